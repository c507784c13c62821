"""Grants: set, replaced, revoked and listed by user name, whether or not the name has an
account; bad names, targets and actions are refused and change nothing."""

import pytest

from authsvc.db.grants import GrantRow, validate_target
from authsvc.db.services import Services
from authsvc.errors import InvalidName, InvalidRequest, NotFound


def test_grant_replaces_earlier_actions(state: Services) -> None:
    state.accounts.create_user("bob", "bob-password")
    state.grants.grant("bob", "alice/x", "pull,push")
    assert state.grants.grant("bob", "alice/x", "pull") == GrantRow("bob", "alice/x", ("pull",))
    assert [(g.target, g.actions) for g in state.grants.list_grants()] == [
        ("alice/x", ("pull",))]


def test_a_name_without_an_account_holds_grants(state: Services) -> None:
    assert state.grants.grant("ghost", "alice/*", ["push", "pull"]).actions == ("pull", "push")
    assert state.grants.list_grants("alice/*") == [GrantRow("ghost", "alice/*", ("pull", "push"))]


def test_list_is_by_target_then_user_and_filters_by_target(state: Services) -> None:
    state.grants.grant("carol", "bob/x", "pull")
    state.grants.grant("bob", "alice/*", "*")
    state.grants.grant("alice", "bob/x", "delete")
    assert [(g.target, g.username) for g in state.grants.list_grants()] == [
        ("alice/*", "bob"), ("bob/x", "alice"), ("bob/x", "carol")]
    assert [g.username for g in state.grants.list_grants("bob/x")] == ["alice", "carol"]
    assert state.grants.list_grants("nobody/*") == []


def test_revoke_takes_the_grant_and_an_absent_one_is_not_found(state: Services) -> None:
    state.grants.grant("bob", "alice/x", "pull")
    state.grants.revoke("bob", "alice/x")
    assert state.grants.list_grants() == []
    with pytest.raises(NotFound):
        state.grants.revoke("bob", "alice/x")


@pytest.mark.parametrize(("username", "target", "actions", "error"), [
    ("Bob", "alice/x", "pull", InvalidName),
    ("bob", "Alice/x", "pull", InvalidName),
    ("bob", "al ice/*", "pull", InvalidName),
    ("bob", "alice/x", "fly", InvalidRequest),
])
def test_bad_input_is_refused_and_changes_nothing(
        state: Services, username: str, target: str, actions: str,
        error: type[Exception]) -> None:
    with pytest.raises(error):
        state.grants.grant(username, target, actions)
    assert state.grants.list_grants() == []


@pytest.mark.parametrize(("target", "valid"), [
    ("alice/x", True), ("alice/*", True), ("alice/x/y", True), ("httpd", True),
    ("alice/*/x", False), ("*", False), ("/*", False), ("myreg:5000/alice/x", False),
])
def test_validate_target(target: str, valid: bool) -> None:
    if valid:
        assert validate_target(target) == target
    else:
        with pytest.raises(InvalidName):
            validate_target(target)

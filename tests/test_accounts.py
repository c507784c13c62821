"""The account store: users, authentication, and what deleting a user takes with it."""

import pytest
from passlib.context import CryptContext

from authsvc.core.passwords import PasswordHasher
from authsvc.core.policy import Subject
from authsvc.db.models import User, db
from authsvc.db.services import Services
from authsvc.errors import AuthenticationFailed, Conflict, NotFound


def test_authenticate_upgrades_weaker_hash(state: Services) -> None:
    state.accounts.create_user("alice", "pass-word")
    user = state.accounts.get_user("alice")
    user.password_hash = CryptContext(schemes=["bcrypt"], bcrypt__rounds=4).hash("pass-word")
    db.session.commit()
    state.accounts.hasher = PasswordHasher(rounds=5)
    assert state.accounts.authenticate("alice", "pass-word") == Subject("alice")
    assert db.session.get(User, user.id).password_hash.startswith("$2b$05$")


def test_passwordless_account_cannot_log_in(state: Services) -> None:
    state.accounts.create_user("robot", None, robot=True)
    with pytest.raises(AuthenticationFailed):
        state.accounts.authenticate("robot", "")


def test_duplicate_user_is_conflict_and_keeps_the_first(state: Services) -> None:
    state.accounts.create_user("alice", "first-pass")
    with pytest.raises(Conflict):
        state.accounts.create_user("alice", "second-pass")
    assert state.accounts.authenticate("alice", "first-pass").name == "alice"


def test_deleting_a_user_takes_their_grants(state: Services) -> None:
    state.accounts.create_user("bob", "bob-password")
    state.grants.grant("bob", "alice/x", "pull")
    state.accounts.delete_user("bob")
    assert state.grants.list_grants() == []
    with pytest.raises(NotFound):
        state.accounts.get_user("bob")


def test_unknown_user_costs_the_same_hash_check_as_a_wrong_password(
        state: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """No enumeration by timing: an unknown name still runs one bcrypt verification."""
    state.accounts.create_user("alice", "pass-word")
    checks: list[str] = []
    context = state.hasher.context
    real_verify, real_update = context.verify, context.verify_and_update
    monkeypatch.setattr(context, "verify", lambda s, h: checks.append(h[:7]) or real_verify(s, h))
    monkeypatch.setattr(context, "verify_and_update",
                        lambda s, h: checks.append(h[:7]) or real_update(s, h))
    for name in ("alice", "ghost"):
        with pytest.raises(AuthenticationFailed) as info:
            state.accounts.authenticate(name, "wrong-guess")
        assert info.value.message == "incorrect username or password"
    assert checks == ["$2b$04$", "$2b$04$"]


def test_deleting_a_user_forgets_their_name_and_namespace_only(state: Services) -> None:
    """Grants held by the name, grants and records in ``name/…``; nothing of a namespace the
    name only prefixes, with LIKE's wildcards (``_``, ``%``) taken literally."""
    for name in ("a_b", "axb", "a_bc", "bob"):
        state.accounts.create_user(name, "long-password")
    for name in ("a_b/x", "a_b/deep/y", "axb/x", "a_bc/x", "a_b"):
        state.repos.create(name)
    state.grants.grant("a_b", "bob/*", "pull")
    state.grants.grant("bob", "a_b/*", "pull")
    state.grants.grant("bob", "a_b/deep/y", "push")
    state.grants.grant("bob", "axb/*", "pull")
    state.grants.grant("bob", "a_bc/x", "pull")
    state.grants.grant("bob", "a_b", "pull")
    state.accounts.delete_user("a_b")
    assert [(g.username, g.target) for g in state.grants.list_grants()] == [
        ("bob", "a_b"), ("bob", "a_bc/x"), ("bob", "axb/*")]
    assert [r.name for r in state.repos.search()[0]] == ["a_b", "a_bc/x", "axb/x"]


def test_deleting_the_last_admin_changes_nothing(state: Services) -> None:
    state.accounts.create_user("root", "long-password", admin=True)
    state.repos.create("root/x", "public")
    state.grants.grant("bob", "root/*", "pull")
    with pytest.raises(Conflict):
        state.accounts.delete_user("root")
    assert [g.target for g in state.grants.list_grants()] == ["root/*"]
    assert [r.name for r in state.repos.search()[0]] == ["root/x"]

"""Organisations and their teams in the database: names shared with the users, owners, teams,
members and permissions, what deleting an organisation or a user takes with it, and one audit
event per change. A refused call changes nothing."""

from typing import Any

import pytest
from sqlalchemy import func, or_, select

from authsvc.db.models import AuditEvent, OrgOwner, Team, TeamMember, TeamPermission, db
from authsvc.db.organizations import OrgView, TeamView
from authsvc.db.services import Services
from authsvc.errors import Conflict, InvalidName, InvalidRequest, NotFound


def trail() -> list[tuple[str, str, str]]:
    """The organisations' and teams' audit events, oldest first: (action, target, detail)."""
    rows = db.session.execute(
        select(AuditEvent.action, AuditEvent.target, AuditEvent.detail)
        .where(or_(AuditEvent.action.startswith("org."), AuditEvent.action.startswith("team.")))
        .order_by(AuditEvent.id)).all()
    return [(action, target, detail) for action, target, detail in rows]


def snapshot(state: Services) -> tuple[Any, ...]:
    """Everything a refused call must leave as it was (and nothing left pending in the
    session for the next commit to write)."""
    assert not (db.session.new or db.session.dirty or db.session.deleted)
    return (
        [state.orgs.view(name) for name in state.orgs.names()],
        [(r.name, r.visibility) for r in state.repos.search()[0]],
        [(g.username, g.target, g.actions) for g in state.grants.list_grants()],
        [u.username for u in state.accounts.list_users()],
        state.audit.search(limit=None)[1],
    )


def rows_of(model: type[Any]) -> int:
    return int(db.session.execute(select(func.count()).select_from(model)).scalar_one())


@pytest.fixture
def acme(state: Services) -> Services:
    """``acme`` owned by alice, with a team ``devs`` (bob, writes ``acme/*``)."""
    state.orgs.create("acme", ["alice"])
    state.orgs.create_team("acme", "devs", "Developers")
    state.orgs.add_member("acme", "devs", "bob")
    state.orgs.set_permission("acme", "devs", "acme/*", "write")
    return state


# -- creating ---------------------------------------------------------------------------------

def test_create_lists_each_owner_once_sorted(state: Services) -> None:
    view = state.orgs.create("acme", ["carol", "alice", "carol"])
    assert view == OrgView("acme", ("alice", "carol"), (), 0)
    assert state.orgs.view("acme") == view
    assert state.orgs.exists("acme") and not state.orgs.exists("acmex")
    assert trail() == [("org.created", "acme", "owner=carol owner=alice")]


@pytest.mark.parametrize(("name", "owners"), [
    ("Acme", ["alice"]), ("ac me", ["alice"]), ("acme/x", ["alice"]), ("", ["alice"]),
    ("-acme", ["alice"]), ("a" * 256, ["alice"]), ("acme", ["alice", "Bob"]), ("acme", [""]),
])
def test_a_bad_name_is_refused_and_changes_nothing(state: Services, name: str,
                                                   owners: list[str]) -> None:
    before = snapshot(state)
    with pytest.raises(InvalidName):
        state.orgs.create(name, owners)
    assert snapshot(state) == before
    assert state.orgs.names() == []


def test_users_and_organisations_never_share_a_name(state: Services) -> None:
    state.accounts.create_user("alice", "alice-password")
    state.orgs.create("acme", ["alice"])
    before = snapshot(state)
    with pytest.raises(Conflict):
        state.orgs.create("alice", ["alice"])
    with pytest.raises(Conflict):
        state.orgs.create("acme", ["bob"])
    with pytest.raises(Conflict, match="organisation"):
        state.accounts.create_user("acme", "acme-password")
    with pytest.raises(Conflict):
        state.accounts.create_user("acme", None, robot=True)
    assert snapshot(state) == before
    assert state.orgs.names() == ["acme"] and state.orgs.view("acme").owners == ("alice",)


# -- viewing ----------------------------------------------------------------------------------

def test_view_sorts_owners_teams_members_and_permissions_and_counts_repositories(
        state: Services) -> None:
    state.orgs.create("acme", ["dave", "alice"])
    for team in ("web", "ops", "data"):
        state.orgs.create_team("acme", team, f"the {team} team")
    for member in ("zoe", "bob", "mia"):
        state.orgs.add_member("acme", "web", member)
    state.orgs.set_permission("acme", "web", "acme/web", "admin")
    state.orgs.set_permission("acme", "web", "acme/*", "read")
    state.orgs.set_permission("acme", "web", "acme/app", "write")
    for name in ("acme/app", "acme/deep/x", "acmex/app", "acme", "other/acme"):
        state.repos.create(name)
    assert state.orgs.view("acme") == OrgView("acme", ("alice", "dave"), (
        TeamView("data", "the data team", (), ()),
        TeamView("ops", "the ops team", (), ()),
        TeamView("web", "the web team", ("bob", "mia", "zoe"),
                 (("acme/*", "read"), ("acme/app", "write"), ("acme/web", "admin"))),
    ), 2)
    assert state.orgs.team("acme", "web") == state.orgs.view("acme").teams[2]


def test_an_unknown_organisation_or_team_is_not_found(acme: Services) -> None:
    with pytest.raises(NotFound):
        acme.orgs.view("nobody")
    with pytest.raises(NotFound):
        acme.orgs.team("acme", "nobody")
    with pytest.raises(NotFound):
        acme.orgs.team("nobody", "devs")


# -- deleting an organisation -----------------------------------------------------------------

@pytest.mark.parametrize(("names", "message"), [
    (["acme/app"], "holds 1 repository:"),
    (["acme/app", "acme/deep/x"], "holds 2 repositories:"),
])
def test_delete_is_refused_while_repositories_are_recorded(
        acme: Services, names: list[str], message: str) -> None:
    for name in names:
        acme.repos.create(name)
    acme.grants.grant("carol", "acme/*", "pull")
    before = snapshot(acme)
    with pytest.raises(Conflict, match=message):
        acme.orgs.delete("acme")
    assert snapshot(acme) == before
    assert acme.orgs.is_member("acme", "bob")


def test_forced_delete_forgets_the_namespace_and_nothing_outside_it(acme: Services) -> None:
    acme.orgs.create("other", ["erin"])
    acme.orgs.create_team("other", "ops")
    acme.orgs.add_member("other", "ops", "bob")
    acme.orgs.set_permission("other", "ops", "other/*", "read")
    for name in ("acme/app", "acme/deep/x", "acmex/app", "acme", "other/app"):
        acme.repos.create(name)
    acme.catalog.put_tag("acme/app", "v1", "sha256:" + "a" * 64, "", 10)
    acme.catalog.put_tag("acmex/app", "v1", "sha256:" + "b" * 64, "", 10)
    acme.orgs.set_permission("acme", "devs", "acme/app", "admin")
    for username, target in (("carol", "acme/*"), ("carol", "acme/app"), ("dave", "acme/deep/x"),
                             ("carol", "acmex/app"), ("carol", "acmex/*"), ("carol", "acme"),
                             ("carol", "other/*")):
        acme.grants.grant(username, target, "pull")

    assert acme.orgs.delete("acme", force=True) == 2

    assert acme.orgs.names() == ["other"] and not acme.orgs.exists("acme")
    assert [r.name for r in acme.repos.search()[0]] == ["acme", "acmex/app", "other/app"]
    assert [(g.username, g.target) for g in acme.grants.list_grants()] == [
        ("carol", "acme"), ("carol", "acmex/*"), ("carol", "acmex/app"), ("carol", "other/*")]
    assert acme.catalog.tags("acme/app") == []
    assert [t.tag for t in acme.catalog.tags("acmex/app")] == ["v1"]
    assert (rows_of(OrgOwner), rows_of(Team), rows_of(TeamMember), rows_of(TeamPermission)) == (
        1, 1, 1, 1)
    assert acme.orgs.view("other") == OrgView("other", ("erin",), (
        TeamView("ops", "", ("bob",), (("other/*", "read"),)),), 1)
    assert not acme.orgs.is_owner("acme", "alice") and not acme.orgs.is_member("acme", "bob")
    assert trail()[-1] == ("org.deleted", "acme", "repositories=2 forced")
    # the name is free again, and a user who takes it inherits nothing
    acme.accounts.create_user("acme", "acme-password")
    assert acme.orgs.names(member="bob") == ["other"]


def test_delete_without_repositories_needs_no_force(acme: Services) -> None:
    assert acme.orgs.delete("acme") == 0
    assert acme.orgs.names() == []
    assert (rows_of(OrgOwner), rows_of(Team), rows_of(TeamMember), rows_of(TeamPermission)) == (
        0, 0, 0, 0)
    assert trail()[-1] == ("org.deleted", "acme", "repositories=0")
    with pytest.raises(NotFound):
        acme.orgs.delete("acme", force=True)


# -- owners -----------------------------------------------------------------------------------

def test_owners_are_added_once_and_removed(acme: Services) -> None:
    acme.orgs.add_owner("acme", "carol")
    acme.orgs.add_owner("acme", "carol")
    assert acme.orgs.view("acme").owners == ("alice", "carol")
    acme.orgs.remove_owner("acme", "alice")
    assert acme.orgs.view("acme").owners == ("carol",)
    assert acme.orgs.is_owner("acme", "carol") and not acme.orgs.is_owner("acme", "alice")
    assert [event for event in trail() if event[0].startswith("org.owner")][-1] == (
        "org.owner_removed", "acme", "user=alice")


def test_refused_owner_changes_change_nothing(acme: Services) -> None:
    before = snapshot(acme)
    with pytest.raises(Conflict, match="last owner"):
        acme.orgs.remove_owner("acme", "alice")
    with pytest.raises(NotFound):
        acme.orgs.remove_owner("acme", "bob")
    with pytest.raises(NotFound):
        acme.orgs.remove_owner("nobody", "alice")
    with pytest.raises(InvalidName):
        acme.orgs.add_owner("acme", "Carol")
    with pytest.raises(NotFound):
        acme.orgs.add_owner("nobody", "carol")
    assert snapshot(acme) == before


# -- teams ------------------------------------------------------------------------------------

def test_create_team_and_the_same_name_in_another_organisation(acme: Services) -> None:
    assert acme.orgs.create_team("acme", "qa", "d" * 1000) == TeamView("qa", "d" * 1000, (), ())
    acme.orgs.create("beta", ["carol"])
    assert acme.orgs.create_team("beta", "devs") == TeamView("devs", "", (), ())
    assert acme.orgs.team("acme", "devs") == TeamView("devs", "Developers", ("bob",),
                                                      (("acme/*", "write"),))


@pytest.mark.parametrize(("org", "team", "description", "error"), [
    ("acme", "devs", "another", Conflict),
    ("acme", "Devs", "", InvalidName),
    ("acme", "de vs", "", InvalidName),
    ("acme", "", "", InvalidName),
    ("acme", "qa", "d" * 1001, InvalidRequest),
    ("nobody", "qa", "", NotFound),
])
def test_refused_team_creation_changes_nothing(acme: Services, org: str, team: str,
                                               description: str,
                                               error: type[Exception]) -> None:
    before = snapshot(acme)
    with pytest.raises(error):
        acme.orgs.create_team(org, team, description)
    assert snapshot(acme) == before


def test_a_team_description_with_a_nul_is_refused(acme: Services) -> None:
    with pytest.raises(InvalidRequest):
        acme.orgs.create_team("acme", "qa", "a\x00b")
    assert [team.name for team in acme.orgs.view("acme").teams] == ["devs"]


def test_delete_team_takes_its_members_and_permissions(acme: Services) -> None:
    acme.orgs.create_team("acme", "ops")
    acme.orgs.add_member("acme", "ops", "carol")
    acme.orgs.delete_team("acme", "devs")
    assert [team.name for team in acme.orgs.view("acme").teams] == ["ops"]
    assert not acme.orgs.is_member("acme", "bob") and acme.orgs.is_member("acme", "carol")
    assert (rows_of(TeamMember), rows_of(TeamPermission)) == (1, 0)
    before = snapshot(acme)
    with pytest.raises(NotFound):
        acme.orgs.delete_team("acme", "devs")
    assert snapshot(acme) == before


# -- members ----------------------------------------------------------------------------------

def test_members_are_added_once_and_removed(acme: Services) -> None:
    acme.accounts.create_user("ci", None, robot=True)
    acme.orgs.add_member("acme", "devs", "ci")
    acme.orgs.add_member("acme", "devs", "bob")
    assert acme.orgs.team("acme", "devs").members == ("bob", "ci")
    acme.orgs.remove_member("acme", "devs", "bob")
    assert acme.orgs.team("acme", "devs").members == ("ci",)
    assert not acme.orgs.is_member("acme", "bob")


@pytest.mark.parametrize(("call", "error"), [
    (lambda orgs: orgs.remove_member("acme", "devs", "carol"), NotFound),
    (lambda orgs: orgs.remove_member("acme", "nobody", "bob"), NotFound),
    (lambda orgs: orgs.add_member("acme", "nobody", "carol"), NotFound),
    (lambda orgs: orgs.add_member("nobody", "devs", "carol"), NotFound),
    (lambda orgs: orgs.add_member("acme", "devs", "Carol"), InvalidName),
])
def test_refused_member_changes_change_nothing(acme: Services, call: Any,
                                               error: type[Exception]) -> None:
    before = snapshot(acme)
    with pytest.raises(error):
        call(acme.orgs)
    assert snapshot(acme) == before


# -- permissions ------------------------------------------------------------------------------

def test_a_permission_replaces_the_one_on_the_same_target(acme: Services) -> None:
    acme.orgs.set_permission("acme", "devs", "acme/*", "read")
    acme.orgs.set_permission("acme", "devs", "acme/app/web", "admin")
    assert acme.orgs.team("acme", "devs").permissions == (
        ("acme/*", "read"), ("acme/app/web", "admin"))
    acme.orgs.remove_permission("acme", "devs", "acme/*")
    assert acme.orgs.team("acme", "devs").permissions == (("acme/app/web", "admin"),)


@pytest.mark.parametrize(("target", "permission", "error"), [
    ("acme/app", "owner", InvalidRequest),
    ("acme/app", "pull", InvalidRequest),
    ("acme/app", "", InvalidRequest),
    ("other/app", "read", InvalidRequest),
    ("acmex/app", "read", InvalidRequest),
    ("acmex/*", "read", (InvalidRequest, InvalidName)),
    ("other/*", "read", (InvalidRequest, InvalidName)),
    ("acme", "read", InvalidRequest),
    ("*", "read", InvalidName),
    ("acme/*/x", "read", InvalidName),
    ("Acme/app", "read", InvalidName),
    ("other/acme/app", "read", InvalidRequest),
])
def test_a_bad_permission_or_a_target_outside_the_organisation_changes_nothing(
        acme: Services, target: str, permission: str,
        error: type[Exception] | tuple[type[Exception], ...]) -> None:
    before = snapshot(acme)
    with pytest.raises(error):
        acme.orgs.set_permission("acme", "devs", target, permission)
    assert snapshot(acme) == before


@pytest.mark.parametrize(("org", "team", "target"), [
    ("acme", "devs", "acme/app"), ("acme", "nobody", "acme/*"), ("nobody", "devs", "acme/*"),
])
def test_removing_a_permission_that_is_not_there_is_not_found(acme: Services, org: str,
                                                              team: str, target: str) -> None:
    before = snapshot(acme)
    with pytest.raises(NotFound):
        acme.orgs.remove_permission(org, team, target)
    assert snapshot(acme) == before


# -- who is in what ---------------------------------------------------------------------------

def test_names_of_a_member_are_those_owned_or_teamed(acme: Services) -> None:
    acme.orgs.create("beta", ["bob"])
    acme.orgs.create("gamma", ["carol"])
    acme.orgs.create_team("gamma", "ops")
    acme.orgs.add_member("gamma", "ops", "alice")
    assert acme.orgs.names() == ["acme", "beta", "gamma"]
    assert acme.orgs.names(member="alice") == ["acme", "gamma"]
    assert acme.orgs.names(member="bob") == ["acme", "beta"]
    assert acme.orgs.names(member="carol") == ["gamma"]
    assert acme.orgs.names(member="stranger") == []


def test_owner_and_member_are_per_organisation(acme: Services) -> None:
    acme.orgs.create("beta", ["carol"])
    acme.orgs.create_team("beta", "ops")
    acme.orgs.add_member("beta", "ops", "dave")
    assert acme.orgs.is_owner("acme", "alice") and not acme.orgs.is_member("acme", "alice")
    assert acme.orgs.is_member("acme", "bob") and not acme.orgs.is_owner("acme", "bob")
    assert not acme.orgs.is_owner("acme", "carol") and not acme.orgs.is_member("acme", "dave")
    assert not acme.orgs.is_owner("acme", None) and not acme.orgs.is_member("acme", None)
    assert not acme.orgs.is_owner("nobody", "alice") and not acme.orgs.is_member("nobody", "bob")


def test_deleting_a_user_forgets_their_ownerships_and_memberships(acme: Services) -> None:
    for name in ("alice", "bob", "carol"):
        acme.accounts.create_user(name, "long-password")
    acme.orgs.add_owner("acme", "carol")
    acme.orgs.create("beta", ["alice", "bob"])
    acme.orgs.create_team("beta", "ops")
    acme.orgs.add_member("beta", "ops", "alice")
    acme.orgs.add_member("beta", "ops", "carol")
    acme.accounts.delete_user("alice")
    acme.accounts.delete_user("bob")
    assert acme.orgs.names(member="alice") == [] and acme.orgs.names(member="bob") == []
    assert acme.orgs.view("acme").owners == ("carol",)
    assert acme.orgs.view("acme").teams[0].members == ()
    assert acme.orgs.view("beta").owners == ()
    assert acme.orgs.view("beta").teams[0].members == ("carol",)
    assert acme.orgs.team("acme", "devs").permissions == (("acme/*", "write"),)
    # an account made again with that name inherits none of it
    acme.accounts.create_user("alice", "long-password")
    assert not acme.orgs.is_owner("acme", "alice") and not acme.orgs.is_member("beta", "alice")


# -- the audit trail --------------------------------------------------------------------------

def test_each_change_is_one_audit_event_with_its_action_target_and_detail(
        state: Services) -> None:
    state.orgs.create("acme", ["alice", "bob"])
    state.orgs.add_owner("acme", "carol")
    state.orgs.remove_owner("acme", "bob")
    state.orgs.create_team("acme", "devs", "Developers")
    state.orgs.add_member("acme", "devs", "dave")
    state.orgs.set_permission("acme", "devs", "acme/*", "write")
    state.orgs.set_permission("acme", "devs", "acme/*", "read")
    state.orgs.remove_permission("acme", "devs", "acme/*")
    state.orgs.remove_member("acme", "devs", "dave")
    state.orgs.delete_team("acme", "devs")
    state.orgs.delete("acme")
    assert trail() == [
        ("org.created", "acme", "owner=alice owner=bob"),
        ("org.owner_added", "acme", "user=carol"),
        ("org.owner_removed", "acme", "user=bob"),
        ("team.created", "acme/devs", ""),
        ("team.member_added", "acme/devs", "user=dave"),
        ("team.permission_set", "acme/devs", "acme/* write"),
        ("team.permission_set", "acme/devs", "acme/* read"),
        ("team.permission_removed", "acme/devs", "acme/*"),
        ("team.member_removed", "acme/devs", "user=dave"),
        ("team.deleted", "acme/devs", ""),
        ("org.deleted", "acme", "repositories=0"),
    ]


def test_adding_who_is_there_already_changes_and_audits_nothing(acme: Services) -> None:
    before = trail()
    acme.orgs.add_owner("acme", "alice")
    acme.orgs.add_member("acme", "devs", "bob")
    assert trail() == before


def test_forgetting_a_repository_takes_the_teams_permissions_on_it(acme: Services) -> None:
    acme.repos.create("acme/app")
    acme.orgs.set_permission("acme", "devs", "acme/app", "admin")
    acme.repos.delete("acme/app")
    assert acme.orgs.team("acme", "devs").permissions == (("acme/*", "write"),)

"""Organisations in the access decision, with the real database: what ``Authorizer`` reads for
owners and team members, what it grants them on ``acme/…``, that a change counts from the very
next decision (on another app sharing the database too), and what ``Repositories.search`` lists
to them."""

from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from authsvc import create_app
from authsvc.core.policy import Subject, TeamGrant, TokenLimit
from authsvc.core.scopes import parse_scope
from authsvc.db.models import db
from authsvc.db.organizations import Organizations
from authsvc.db.services import Services, services_of
from tests.conftest import TEST_CONFIG

OWNER, ADMIN, WRITER, READER, OTHER = (Subject(n) for n in ("olive", "adam", "wendy", "reed",
                                                             "otto"))
STRANGER, ANONYMOUS = Subject("sam"), Subject(None)


def decide(state: Services, subject: Subject, scope: str) -> list[str]:
    """The actions granted on one scope."""
    ((_, granted),) = state.authorizer.authorize(subject, [parse_scope(scope)])
    return sorted(granted)


def make_acme(state: Services, visibility: str = "private") -> None:
    """``acme`` owned by olive; adam's team has admin on ``acme/*``, wendy's write and reed's
    read on ``acme/app``, otto's write on ``acme/other``; wendy is also in a team of ``beta``.
    """
    orgs = state.orgs
    orgs.create("acme", ["olive"])
    for team, member, target, permission in (
            ("admins", "adam", "acme/*", "admin"), ("writers", "wendy", "acme/app", "write"),
            ("readers", "reed", "acme/app", "read"), ("others", "otto", "acme/other", "write")):
        orgs.create_team("acme", team)
        orgs.add_member("acme", team, member)
        orgs.set_permission("acme", team, target, permission)
    orgs.create("beta", ["bea"])
    orgs.create_team("beta", "ops")
    orgs.add_member("beta", "ops", "wendy")
    orgs.set_permission("beta", "ops", "beta/*", "admin")
    state.repos.create("acme/app", visibility)
    for name in ("acme/other", "acmex/app", "beta/tool"):
        state.repos.create(name, "private")


@pytest.fixture
def acme(state: Services) -> Services:
    make_acme(state)
    return state


# -- the facts ----------------------------------------------------------------------------------

def test_facts_carry_the_members_own_teams_on_the_path_only(acme: Services) -> None:
    facts = acme.authorizer.facts(WRITER, "acme/app")
    assert (facts.exists, facts.public, facts.org_owner) == (True, False, False)
    assert facts.team_grants == (TeamGrant("acme/app", "write"),)
    assert acme.authorizer.facts(ADMIN, "acme/app").team_grants == (
        TeamGrant("acme/*", "admin"),)
    assert acme.authorizer.facts(WRITER, "acme/other").team_grants == ()
    assert acme.authorizer.facts(WRITER, "beta/tool").team_grants == (
        TeamGrant("beta/*", "admin"),)
    for subject in (OTHER, STRANGER, ANONYMOUS):
        facts = acme.authorizer.facts(subject, "acme/app")
        assert (facts.team_grants, facts.org_owner) == ((), False), subject


def test_facts_mark_an_owner_in_the_organisations_namespace_only(acme: Services) -> None:
    facts = acme.authorizer.facts(OWNER, "acme/app")
    assert facts.org_owner and facts.team_grants == ()
    assert acme.authorizer.facts(OWNER, "acme/not/yet").org_owner
    for path in ("acmex/app", "beta/tool", "acme"):
        assert not acme.authorizer.facts(OWNER, path).org_owner, path
    assert not acme.authorizer.facts(Subject("bea"), "acme/app").org_owner


# -- the decision -------------------------------------------------------------------------------

@pytest.mark.parametrize(("subject", "private", "public"), [
    (OWNER, ["*"], ["*"]),
    (ADMIN, ["*"], ["*"]),
    (WRITER, ["pull", "push"], ["pull", "push"]),
    (READER, ["pull"], ["pull"]),
    (OTHER, [], ["pull"]),
    (STRANGER, [], ["pull"]),
    (ANONYMOUS, [], ["pull"]),
    (Subject("bea"), [], ["pull"]),
    (Subject("wendy", disabled=True), [], []),
    (Subject("wendy", limit=TokenLimit(frozenset({"pull"}))), ["pull"], ["pull"]),
    (Subject("olive", limit=TokenLimit(frozenset({"pull", "push"}), ("acme/other",))), [], []),
])
def test_what_each_subject_gets_on_acme_app(state: Services, subject: Subject,
                                            private: list[str], public: list[str]) -> None:
    make_acme(state)
    assert decide(state, subject, "repository:acme/app:*") == private
    state.repos.set_visibility("acme/app", "public")
    assert decide(state, subject, "repository:acme/app:*") == public


@pytest.mark.parametrize(("subject", "granted"), [
    (OWNER, ["delete", "pull", "push"]), (ADMIN, ["delete", "pull", "push"]),
    (WRITER, ["pull", "push"]), (READER, ["pull"]), (STRANGER, []), (ANONYMOUS, []),
])
def test_concrete_actions_are_a_subset_of_those_asked(acme: Services, subject: Subject,
                                                      granted: list[str]) -> None:
    assert decide(acme, subject, "repository:acme/app:pull,push,delete") == granted
    assert decide(acme, subject, "repository:acme/app:pull") == (["pull"] if granted else [])


def test_nothing_leaks_outside_the_organisation(acme: Services) -> None:
    for subject in (OWNER, ADMIN, WRITER, READER):
        assert decide(acme, subject, "repository:acmex/app:*") == [], subject
        assert decide(acme, subject, "repository:acme:*") == [], subject
    assert decide(acme, OTHER, "repository:acme/other:*") == ["pull", "push"]
    assert decide(acme, WRITER, "repository:beta/tool:*") == ["*"]


def test_a_push_by_a_team_admin_registers_the_repository_a_denied_one_does_not(
        acme: Services) -> None:
    assert decide(acme, WRITER, "repository:acme/new:push") == []
    assert acme.repos.find("acme/new") is None
    assert decide(acme, ADMIN, "repository:acme/new:push") == ["push"]
    assert acme.repos.get("acme/new").visibility == acme.repos.default_visibility


# -- a change counts from the next decision -------------------------------------------------------

def hand_over(orgs: Organizations) -> None:
    orgs.add_owner("acme", "bea")
    orgs.remove_owner("acme", "olive")


#: A change, who loses by it, and what they keep on ``acme/app:*``.
CHANGES: list[tuple[str, Callable[[Organizations], None], Subject, list[str]]] = [
    ("member removed", lambda o: o.remove_member("acme", "writers", "wendy"), WRITER, []),
    ("permission removed", lambda o: o.remove_permission("acme", "readers", "acme/app"),
     READER, []),
    ("permission lowered", lambda o: o.set_permission("acme", "writers", "acme/app", "read"),
     WRITER, ["pull"]),
    ("team deleted", lambda o: o.delete_team("acme", "admins"), ADMIN, []),
    ("owner removed", hand_over, OWNER, []),
    ("organisation deleted", lambda o: o.delete("acme", force=True), WRITER, []),
]


@pytest.mark.parametrize(("change", "subject", "kept"), [c[1:] for c in CHANGES],
                         ids=[c[0] for c in CHANGES])
def test_a_change_counts_from_the_very_next_decision(
        acme: Services, change: Callable[[Organizations], None], subject: Subject,
        kept: list[str]) -> None:
    assert decide(acme, subject, "repository:acme/app:*") != kept
    change(acme.orgs)
    assert decide(acme, subject, "repository:acme/app:*") == kept


def test_a_user_deleted_and_made_again_holds_nothing_of_the_organisation(acme: Services) -> None:
    acme.accounts.create_user("wendy", "long-password")
    acme.accounts.delete_user("wendy")
    acme.accounts.create_user("wendy", "long-password")
    assert decide(acme, WRITER, "repository:acme/app:*") == []
    assert decide(acme, WRITER, "repository:beta/tool:*") == []


@pytest.fixture
def replica(app: Flask) -> Iterator[Flask]:
    """A second app on the same database (the SQLite file, or AUTHSVC_TEST_DATABASE_URL): what
    another replica of the deployment would be."""
    other = create_app({**TEST_CONFIG, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"]})
    yield other
    with other.app_context():
        services_of(other).reads.close()
        db.session.remove()
        db.engine.dispose()


def test_a_change_through_one_replica_counts_on_the_next_decision_of_the_other(
        app: Flask, replica: Flask) -> None:
    def on(which: Flask, subject: Subject) -> list[str]:
        with which.app_context():
            return decide(services_of(which), subject, "repository:acme/app:*")

    with app.app_context():
        make_acme(services_of(app))
    assert on(app, STRANGER) == on(replica, STRANGER) == []
    assert on(app, WRITER) == on(replica, WRITER) == ["pull", "push"]

    with replica.app_context():
        services_of(replica).orgs.add_member("acme", "readers", "sam")
    assert on(app, STRANGER) == ["pull"]
    with app.app_context():
        services_of(app).orgs.remove_member("acme", "writers", "wendy")
    assert on(replica, WRITER) == []
    with replica.app_context():
        services_of(replica).orgs.remove_permission("acme", "readers", "acme/app")
    assert on(app, STRANGER) == on(app, READER) == []
    with app.app_context():
        services_of(app).orgs.set_permission("acme", "readers", "acme/*", "write")
    assert on(replica, STRANGER) == on(replica, READER) == ["pull", "push"]
    with replica.app_context():
        services_of(replica).orgs.delete("acme", force=True)
    assert on(app, OWNER) == on(app, READER) == []


# -- what a search lists --------------------------------------------------------------------------

@pytest.mark.parametrize(("subject", "listed"), [
    (OWNER, ["acme/app", "acme/other", "pub/lib"]),
    (ADMIN, ["acme/app", "acme/other", "pub/lib"]),
    (WRITER, ["acme/app", "beta/tool", "pub/lib"]),
    (READER, ["acme/app", "pub/lib"]),
    (OTHER, ["acme/other", "pub/lib"]),
    (STRANGER, ["pub/lib"]),
    (ANONYMOUS, ["pub/lib"]),
    (Subject("reed", limit=TokenLimit(frozenset({"pull"}), ("acme/other",))), []),
])
def test_search_lists_what_the_subject_may_pull(acme: Services, subject: Subject,
                                                listed: list[str]) -> None:
    acme.repos.create("pub/lib", "public")
    assert [r.name for r in acme.repos.search(subject)[0]] == listed
    assert acme.repos.search(subject, "acme")[1] == len([n for n in listed if "acme" in n])


def test_search_and_catalog_drop_a_repository_once_the_team_loses_it(acme: Services) -> None:
    acme.catalog.put_tag("acme/app", "v1", "sha256:" + "a" * 64, "", 10)
    acme.catalog.put_tag("acme/other", "v1", "sha256:" + "b" * 64, "", 10)
    assert [r.name for r in acme.repos.search(READER)[0]] == ["acme/app"]
    assert acme.repos.tagged_names(READER, "", 100) == ["acme/app"]
    acme.orgs.remove_permission("acme", "readers", "acme/app")
    assert acme.repos.search(READER)[0] == []
    assert acme.repos.tagged_names(READER, "", 100) == []

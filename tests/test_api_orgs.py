"""The ``/api/v1/orgs`` routes: organisations, their owners and teams (issue 14).

Who may do what, route by route: an owner, an admin, a member of a team with ``admin`` on
``acme/*`` (no owner: may manage the repositories, not the organisation), a plain member, a
stranger, an anonymous caller, and the owner with an access token. Every refused request is
followed by a check, through the service, that nothing changed.
"""

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.db.services import Services, services_of
from tests.api_helpers import ALICE, BOB, ROOT, Who, call, error_of, new_token, snapshot
from tests.conftest import PASSWORD
from tests.token_helpers import Decode, access_of, get_token

CAROL = ("carol", PASSWORD)  # in the team "ops", which holds admin on acme/*
DAN = ("dan", PASSWORD)  # in the team "dev", which holds read on acme/*
HIDDEN = "organisation 'acme' does not exist"


@pytest.fixture
def acme(app: Flask, make_user: Any) -> None:
    """acme, owned by alice and frank (a name without an account), with the teams dev (dan;
    read on acme/*) and ops (carol; admin on acme/*); globex, with no owner. bob is in no
    team."""
    for name in ("alice", "bob", "carol", "dan"):
        make_user(name)
    make_user("root", admin=True)
    with app.app_context():
        orgs = services_of(app).orgs
        orgs.create("acme", ["alice", "frank"])
        orgs.create_team("acme", "dev", "developers")
        orgs.add_member("acme", "dev", "dan")
        orgs.set_permission("acme", "dev", "acme/*", "read")
        orgs.create_team("acme", "ops")
        orgs.add_member("acme", "ops", "carol")
        orgs.set_permission("acme", "ops", "acme/*", "admin")
        orgs.create("globex")


def org_state(app: Flask) -> dict[str, Any]:
    """Every organisation as the service reads it, with everything else the API can change."""
    with app.app_context():
        orgs = services_of(app).orgs
        return {"orgs": [orgs.view(n) for n in orgs.names()], **snapshot(app)}


def read_back(app: Flask, check: Callable[[Services], bool]) -> bool:
    with app.app_context():
        return check(services_of(app))


CALLERS: dict[str, Who] = {"owner": ALICE, "admin": ROOT, "team admin": CAROL, "member": DAN,
                          "stranger": BOB, "anonymous": None}


def caller(client: FlaskClient, who: str) -> Who:
    """The credentials of each kind of caller; ``owner token``: a fresh access token of
    alice's with the widest permission."""
    if who == "owner token":
        return new_token(client, "alice", permission="delete")
    return CALLERS[who]


# -- who may see -----------------------------------------------------------------------------

READS = [("/orgs/acme", "acme"), ("/orgs/acme/teams/dev", "dev")]


@pytest.mark.parametrize("path", [p for p, _ in READS])
@pytest.mark.parametrize(("who", "status"), [
    ("owner", 200), ("owner token", 200), ("admin", 200), ("team admin", 200),
    ("member", 200), ("stranger", 404), ("anonymous", 401),
])
def test_who_may_see(app: Flask, client: FlaskClient, acme: None, path: str, who: str,
                     status: int) -> None:
    response = call(client, "GET", path, caller(client, who))
    if status == 200:
        assert response.status_code == 200, response.json
        assert response.json["name"] == dict(READS)[path]
    elif status == 404:
        assert error_of(response, 404, "NOT_FOUND") == HIDDEN
    else:
        error_of(response, 401, "UNAUTHORIZED")


def test_org_and_team_bodies(client: FlaskClient, acme: None) -> None:
    dev = {"name": "dev", "description": "developers", "members": ["dan"],
           "permissions": [{"target": "acme/*", "permission": "read"}]}
    ops = {"name": "ops", "description": "", "members": ["carol"],
           "permissions": [{"target": "acme/*", "permission": "admin"}]}
    assert call(client, "GET", "/orgs/acme", DAN).json == {
        "name": "acme", "owners": ["alice", "frank"], "teams": [dev, ops], "repositories": 0}
    assert call(client, "GET", "/orgs/acme/teams/dev", ALICE).json == dev


@pytest.mark.parametrize("who", [ROOT, ALICE, BOB])
def test_a_missing_org_answers_as_a_hidden_one(client: FlaskClient, acme: None,
                                               who: Who) -> None:
    for path in ("/orgs/nope", "/orgs/nope/teams/dev"):
        message = error_of(call(client, "GET", path, who), 404, "NOT_FOUND")
        assert message == "organisation 'nope' does not exist"


def test_a_missing_team_is_404(client: FlaskClient, acme: None) -> None:
    assert "qa" in error_of(call(client, "GET", "/orgs/acme/teams/qa", DAN), 404, "NOT_FOUND")


@pytest.mark.parametrize(("who", "expected"), [
    pytest.param(ROOT, ["acme", "globex"], id="admin: all"),
    pytest.param(ALICE, ["acme"], id="owner"),
    pytest.param(CAROL, ["acme"], id="team admin"),
    pytest.param(DAN, ["acme"], id="member"),
    pytest.param(BOB, [], id="stranger"),
])
def test_list_shows_what_the_caller_may_see(client: FlaskClient, acme: None, who: Who,
                                            expected: list[str]) -> None:
    response = call(client, "GET", "/orgs", who)
    assert response.status_code == 200
    assert response.json == {"orgs": [{"name": n} for n in expected]}


def test_list_needs_credentials(client: FlaskClient, acme: None) -> None:
    response = call(client, "GET", "/orgs")
    error_of(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


# -- who may change --------------------------------------------------------------------------

def _teams(s: Services) -> list[str]:
    return [t.name for t in s.orgs.view("acme").teams]


#: id: (method, path, body, success status, what the service reads after a success)
CHANGES: dict[str, tuple[str, str, Any, int, Callable[[Services], bool]]] = {
    "delete org": ("DELETE", "/orgs/acme", None, 204, lambda s: not s.orgs.exists("acme")),
    "add owner": ("PUT", "/orgs/acme/owners/bob", None, 204,
                  lambda s: s.orgs.is_owner("acme", "bob")),
    "remove owner": ("DELETE", "/orgs/acme/owners/frank", None, 204,
                     lambda s: s.orgs.view("acme").owners == ("alice",)),
    "create team": ("POST", "/orgs/acme/teams", {"name": "qa", "description": "testers"}, 201,
                    lambda s: ("qa", "testers") in [(t.name, t.description)
                                                     for t in s.orgs.view("acme").teams]),
    "delete team": ("DELETE", "/orgs/acme/teams/dev", None, 204,
                    lambda s: _teams(s) == ["ops"]),
    "add member": ("PUT", "/orgs/acme/teams/dev/members/bob", None, 204,
                   lambda s: s.orgs.team("acme", "dev").members == ("bob", "dan")),
    "remove member": ("DELETE", "/orgs/acme/teams/dev/members/dan", None, 204,
                      lambda s: s.orgs.team("acme", "dev").members == ()),
    "set permission": ("PUT", "/orgs/acme/teams/dev/permissions",
                       {"target": "acme/app", "permission": "write"}, 200,
                       lambda s: s.orgs.team("acme", "dev").permissions == (
                           ("acme/*", "read"), ("acme/app", "write"))),
    "remove permission": ("DELETE", "/orgs/acme/teams/dev/permissions?target=acme/*", None,
                          204, lambda s: s.orgs.team("acme", "dev").permissions == ()),
}


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("who", ["owner", "admin"])
def test_owners_and_admins_change(app: Flask, client: FlaskClient, acme: None, change: str,
                                  who: str) -> None:
    method, path, body, status, changed = CHANGES[change]
    assert not read_back(app, changed)
    response = call(client, method, path, caller(client, who), json=body)
    assert response.status_code == status, response.json
    assert read_back(app, changed)


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize(("who", "status", "code"), [
    pytest.param("owner token", 403, "DENIED", id="owner with an access token"),
    pytest.param("team admin", 403, "DENIED", id="team with admin on acme/*"),
    pytest.param("member", 403, "DENIED", id="member"),
    pytest.param("stranger", 404, "NOT_FOUND", id="stranger"),
    pytest.param("anonymous", 401, "UNAUTHORIZED", id="anonymous"),
])
def test_others_may_not_change(app: Flask, client: FlaskClient, acme: None, change: str,
                               who: str, status: int, code: str) -> None:
    method, path, body, _, _ = CHANGES[change]
    credentials = caller(client, who)
    before = org_state(app)
    message = error_of(call(client, method, path, credentials, json=body), status, code)
    if status == 404:
        assert message == HIDDEN
    if status == 403:
        assert "owners" in message and "access token" in message
    assert org_state(app) == before


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PUT", "/orgs/acme/teams/dev/permissions", {"target": 1}),
    ("POST", "/orgs/acme/teams", {"name": "Not A Name"}),
    ("DELETE", "/orgs/acme?force=maybe", None),
    ("PUT", "/orgs/acme/owners/Not%20A%20Name", None),
])
def test_a_stranger_learns_nothing_from_a_bad_request(app: Flask, client: FlaskClient,
                                                      acme: None, method: str, path: str,
                                                      body: Any) -> None:
    before = org_state(app)
    assert error_of(call(client, method, path, BOB, json=body), 404, "NOT_FOUND") == HIDDEN
    assert org_state(app) == before


# -- creating --------------------------------------------------------------------------------

def test_admin_creates_an_org_with_the_owners_named(app: Flask, client: FlaskClient,
                                                    acme: None) -> None:
    response = call(client, "POST", "/orgs", ROOT,
                    json={"name": "initech", "owners": ["bob", "carol"]})
    assert response.status_code == 201, response.json
    assert response.json == {"name": "initech", "owners": ["bob", "carol"], "teams": [],
                             "repositories": 0}
    assert call(client, "GET", "/orgs/initech", BOB).json == response.json
    assert call(client, "GET", "/orgs", BOB).json == {"orgs": [{"name": "initech"}]}


@pytest.mark.parametrize("who", [
    pytest.param(ALICE, id="user"), pytest.param("token", id="admin's access token")])
def test_by_default_only_password_admins_create(app: Flask, client: FlaskClient, acme: None,
                                                who: Who) -> None:
    if who == "token":
        who = new_token(client, "root", permission="delete")
    before = org_state(app)
    response = call(client, "POST", "/orgs", who, json={"name": "initech", "owners": ["alice"]})
    assert "ORG_CREATORS" in error_of(response, 403, "DENIED")
    assert org_state(app) == before


@pytest.mark.app_config(ORG_CREATORS="users")
def test_org_creators_users_lets_a_user_create_and_own(app: Flask, client: FlaskClient,
                                                       acme: None) -> None:
    response = call(client, "POST", "/orgs", BOB, json={"name": "initech"})
    assert response.status_code == 201, response.json
    assert response.json["owners"] == ["bob"]
    response = call(client, "POST", "/orgs", DAN, json={"name": "hooli", "owners": ["carol"]})
    assert response.json["owners"] == ["carol", "dan"]
    assert read_back(app, lambda s: s.orgs.is_owner("initech", "bob")
                     and s.orgs.is_owner("hooli", "dan"))
    assert call(client, "PUT", "/orgs/initech/owners/alice", BOB).status_code == 204


@pytest.mark.app_config(ORG_CREATORS="users")
def test_org_creators_users_still_needs_a_password(app: Flask, client: FlaskClient,
                                                   acme: None) -> None:
    token = new_token(client, "bob", permission="delete")
    before = org_state(app)
    error_of(call(client, "POST", "/orgs", token, json={"name": "initech"}), 403, "DENIED")
    error_of(call(client, "POST", "/orgs", None, json={"name": "initech"}), 401)
    assert org_state(app) == before


def test_an_org_may_not_take_a_user_name(app: Flask, client: FlaskClient, acme: None) -> None:
    before = org_state(app)
    assert "bob" in error_of(call(client, "POST", "/orgs", ROOT, json={"name": "bob"}), 409,
                             "CONFLICT")
    error_of(call(client, "POST", "/orgs", ROOT, json={"name": "acme"}), 409, "CONFLICT")
    assert org_state(app) == before


def test_a_user_may_not_take_an_org_name(app: Flask, client: FlaskClient, acme: None) -> None:
    before = org_state(app)
    response = call(client, "POST", "/users", ROOT,
                    json={"username": "acme", "password": "battery staple"})
    error_of(response, 409, "CONFLICT")
    assert org_state(app) == before


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"name": "Initech"}, 422, "NAME_INVALID"),
    ({"name": "init/ech"}, 422, "NAME_INVALID"),
    ({"name": ""}, 422, "NAME_INVALID"),
    ({"name": "i" * 256}, 422, "NAME_INVALID"),
    ({"name": "initech", "owners": ["Bob"]}, 422, "NAME_INVALID"),
    ({"name": 7}, 422, "INVALID_REQUEST"),
    ({}, 422, "INVALID_REQUEST"),
    ({"name": "initech", "owners": "bob"}, 422, "INVALID_REQUEST"),
    ({"name": "initech", "owners": [1]}, 422, "INVALID_REQUEST"),
    ({"name": "initech", "teams": []}, 422, "INVALID_REQUEST"),
    (["initech"], 400, "BAD_REQUEST"),
    (None, 400, "BAD_REQUEST"),
])
def test_bad_new_org_changes_nothing(app: Flask, client: FlaskClient, acme: None, body: Any,
                                     status: int, code: str) -> None:
    before = org_state(app)
    error_of(call(client, "POST", "/orgs", ROOT, json=body), status, code)
    assert org_state(app) == before


# -- bad team bodies -------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("POST", "/orgs/acme/teams", {"name": "Dev"}, 422, "NAME_INVALID"),
    ("POST", "/orgs/acme/teams", {"name": "qa", "description": "x" * 1001}, 422,
     "INVALID_REQUEST"),
    ("POST", "/orgs/acme/teams", {"name": "qa", "members": []}, 422, "INVALID_REQUEST"),
    ("POST", "/orgs/acme/teams", {"name": "dev"}, 409, "CONFLICT"),
    ("POST", "/orgs/acme/teams", "qa", 400, "BAD_REQUEST"),
    ("PUT", "/orgs/acme/teams/dev/permissions", {"target": "globex/app", "permission": "read"},
     422, "INVALID_REQUEST"),
    ("PUT", "/orgs/acme/teams/dev/permissions", {"target": "acme/*", "permission": "owner"},
     422, "INVALID_REQUEST"),
    ("PUT", "/orgs/acme/teams/dev/permissions", {"target": "acme/*"}, 422, "INVALID_REQUEST"),
    ("PUT", "/orgs/acme/teams/dev/permissions", {"target": "Acme/App", "permission": "read"},
     422, "NAME_INVALID"),
    ("PUT", "/orgs/acme/teams/qa/permissions", {"target": "acme/*", "permission": "read"},
     404, "NOT_FOUND"),
    ("DELETE", "/orgs/acme/teams/dev/permissions", None, 422, "INVALID_REQUEST"),
    ("DELETE", "/orgs/acme/teams/dev/permissions?target=acme/app", None, 404, "NOT_FOUND"),
    ("PUT", "/orgs/acme/teams/dev/members/Bob", None, 422, "NAME_INVALID"),
    ("DELETE", "/orgs/acme/teams/dev/members/bob", None, 404, "NOT_FOUND"),
    ("PUT", "/orgs/acme/teams/qa/members/bob", None, 404, "NOT_FOUND"),
    ("DELETE", "/orgs/acme/teams/qa", None, 404, "NOT_FOUND"),
    ("PUT", "/orgs/acme/owners/Bob", None, 422, "NAME_INVALID"),
    ("DELETE", "/orgs/acme/owners/bob", None, 404, "NOT_FOUND"),
    ("DELETE", "/orgs/acme?force=maybe", None, 422, "INVALID_REQUEST"),
])
def test_bad_changes_change_nothing(app: Flask, client: FlaskClient, acme: None, method: str,
                                    path: str, body: Any, status: int, code: str) -> None:
    before = org_state(app)
    error_of(call(client, method, path, ALICE, json=body), status, code)
    assert org_state(app) == before


# -- owners, deleting ------------------------------------------------------------------------

def test_the_last_owner_stays(app: Flask, client: FlaskClient, acme: None) -> None:
    assert call(client, "DELETE", "/orgs/acme/owners/frank", ALICE).status_code == 204
    before = org_state(app)
    message = error_of(call(client, "DELETE", "/orgs/acme/owners/alice", ROOT), 409, "CONFLICT")
    assert "last owner" in message
    assert org_state(app) == before
    assert read_back(app, lambda s: s.orgs.view("acme").owners == ("alice",))


def test_delete_is_refused_while_repositories_are_recorded(app: Flask, client: FlaskClient,
                                                           acme: None) -> None:
    with app.app_context():
        s = services_of(app)
        s.repos.create("acme/app")
        s.grants.grant("bob", "acme/*", "pull")
    before = org_state(app)
    assert "1 repository" in error_of(call(client, "DELETE", "/orgs/acme", ALICE), 409,
                                      "CONFLICT")
    assert org_state(app) == before
    with app.app_context():
        services_of(app).repos.create("acme/web")
    assert call(client, "GET", "/orgs/acme", ALICE).json["repositories"] == 2
    assert "2 repositories" in error_of(call(client, "DELETE", "/orgs/acme", ALICE), 409)
    assert read_back(app, lambda s: s.orgs.exists("acme"))


def test_forced_delete_forgets_the_records(app: Flask, client: FlaskClient, acme: None) -> None:
    with app.app_context():
        s = services_of(app)
        s.repos.create("acme/app")
        s.repos.create("acmecorp/app")
        s.grants.grant("bob", "acme/*", "pull")
        s.grants.grant("bob", "acme/app", "pull")
    assert call(client, "DELETE", "/orgs/acme?force=true", ALICE).status_code == 204
    with app.app_context():
        s = services_of(app)
        assert not s.orgs.exists("acme")
        assert s.repos.find("acme/app") is None
        assert s.repos.find("acmecorp/app") is not None
        assert [g.target for g in s.grants.list_grants()] == []
        assert s.orgs.names() == ["globex"]
    error_of(call(client, "GET", "/orgs/acme", ALICE), 404)


# -- audit -----------------------------------------------------------------------------------

def test_every_change_is_audited_with_its_actor(app: Flask, client: FlaskClient,
                                                acme: None) -> None:
    steps = [("POST", "/orgs", {"name": "initech", "owners": ["alice"]}, ROOT),
             ("PUT", "/orgs/initech/owners/bob", None, ALICE),
             ("DELETE", "/orgs/initech/owners/bob", None, ALICE),
             ("POST", "/orgs/initech/teams", {"name": "qa"}, ALICE),
             ("PUT", "/orgs/initech/teams/qa/members/dan", None, ALICE),
             ("PUT", "/orgs/initech/teams/qa/permissions",
              {"target": "initech/*", "permission": "write"}, ALICE),
             ("DELETE", "/orgs/initech/teams/qa/permissions?target=initech/*", None, ALICE),
             ("DELETE", "/orgs/initech/teams/qa/members/dan", None, ALICE),
             ("DELETE", "/orgs/initech/teams/qa", None, ALICE),
             ("DELETE", "/orgs/initech", None, ALICE)]
    for method, path, body, who in steps:
        assert call(client, method, path, who, json=body).status_code in (200, 201, 204), path
    with app.app_context():
        audit = services_of(app).audit
        orgs = [(e.action, e.actor, e.target, e.detail)
                for e in reversed(audit.search(action="org.")[0]) if e.target == "initech"]
        teams = [(e.action, e.actor, e.target, e.detail)
                 for e in reversed(audit.search(action="team.")[0])
                 if e.target == "initech/qa"]
    assert orgs == [("org.created", "root", "initech", "owner=alice"),
                    ("org.owner_added", "alice", "initech", "user=bob"),
                    ("org.owner_removed", "alice", "initech", "user=bob"),
                    ("org.deleted", "alice", "initech", "repositories=0")]
    assert teams == [("team.created", "alice", "initech/qa", ""),
                     ("team.member_added", "alice", "initech/qa", "user=dan"),
                     ("team.permission_set", "alice", "initech/qa", "initech/* write"),
                     ("team.permission_removed", "alice", "initech/qa", "initech/*"),
                     ("team.member_removed", "alice", "initech/qa", "user=dan"),
                     ("team.deleted", "alice", "initech/qa", "")]


# -- what the registry's tokens grant --------------------------------------------------------

def test_membership_counts_from_the_next_token(app: Flask, client: FlaskClient, decode: Decode,
                                               acme: None) -> None:
    with app.app_context():
        services_of(app).repos.create("acme/app", "private")
    scope = "repository:acme/app:pull,push"

    def granted() -> list[str]:
        return access_of(decode, get_token(client, scope, auth=BOB))[scope.rsplit(":", 1)[0]]

    assert granted() == []
    assert call(client, "POST", "/orgs/acme/teams", ALICE, json={"name": "ci"}).status_code == 201
    assert call(client, "PUT", "/orgs/acme/teams/ci/members/bob", ALICE).status_code == 204
    assert granted() == []  # a member of a team without permissions
    response = call(client, "PUT", "/orgs/acme/teams/ci/permissions", ALICE,
                    json={"target": "acme/*", "permission": "write"})
    assert response.status_code == 200
    assert response.json == {"name": "ci", "description": "", "members": ["bob"],
                             "permissions": [{"target": "acme/*", "permission": "write"}]}
    assert sorted(granted()) == ["pull", "push"]
    assert call(client, "DELETE", "/orgs/acme/teams/ci/members/bob", ALICE).status_code == 204
    assert granted() == []

"""The ``/api/v1`` user routes, ``/me``, refresh tokens, authentication of every route, and the
OpenAPI document (issue: admin and self-service API).

Every refused request is followed by a check that the database is exactly as before.
"""

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from authsvc.db.models import AuditEvent, db
from authsvc.db.services import Services, services_of
from authsvc.web.api.admin import ANONYMOUS_READS, PUBLIC_ENDPOINTS
from tests.api_helpers import (
    ALICE,
    BOB,
    NEW_PASSWORD,
    ROOT,
    Who,
    call,
    error_of,
    new_token,
    snapshot,
    token_actions,
)
from tests.conftest import PASSWORD
from tests.token_helpers import Decode


def audit_events(app: Flask) -> list[AuditEvent]:
    with app.app_context():
        rows = list(db.session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars())
        db.session.expunge_all()
    return rows


def docker_login(client: FlaskClient, user: str = "alice") -> str:
    response: Any = client.get(f"/token?account={user}&client_id=docker&offline_token=true"
                               "&service=registry", auth=(user, PASSWORD))
    assert response.status_code == 200, response.json
    return str(response.json["refresh_token"])


@pytest.fixture
def people(make_user: Any) -> None:
    make_user("root", admin=True)
    make_user("alice")
    make_user("bob")


# -- authentication, for every route ---------------------------------------------------------

def api_rules(app: Flask, *, anonymous: bool = False) -> list[tuple[str, str]]:
    """(method, rule) for every route under /api/v1 that takes user credentials (not the public
    OpenAPI document, not the registry's notifications, which carry their own secret), and
    with ``anonymous`` not the listings that callers without credentials may read."""
    skipped = PUBLIC_ENDPOINTS | (ANONYMOUS_READS if anonymous else set())
    return sorted((method, rule.rule) for rule in app.url_map.iter_rules()
                  if rule.rule.startswith("/api/v1/") and rule.endpoint not in skipped
                  for method in rule.methods or () if method not in ("HEAD", "OPTIONS"))


def concrete(rule: str, token_id: int) -> str:
    """A URL for ``rule`` naming objects: alice, alice/httpd, her first token, acme/devs."""
    values = {"path:name": "alice/httpd", "name": "alice", "username": "bob",
              "namespace": "alice", "tag": "v1", "org": "acme", "team": "devs"}

    def fill(match: re.Match[str]) -> str:
        converter, variable = match.group(1) or "", match.group(2)
        if variable == "token_id":
            return str(token_id)
        return values[f"{converter}{variable}" if converter == "path:" else variable]

    return re.sub(r"<([^<>:]*:)?(\w+)>", fill, rule).removeprefix("/api/v1")


@pytest.fixture
def world(app: Flask, client: FlaskClient, people: None) -> int:
    """alice/httpd with a grant for bob, an access token and a refresh token of alice's."""
    with app.app_context():
        s: Services = services_of(app)
        s.repos.create("alice/httpd")
        s.grants.grant("bob", "alice/httpd", "pull")
        s.grants.grant("bob", "alice/*", "pull")
        info, _ = s.access_tokens.create("alice", "ci", "write")
        token_id = info.id
    docker_login(client)
    return token_id


BAD_CREDENTIALS = [
    pytest.param(None, id="none"),
    pytest.param(("root", "wrong password"), id="wrong password"),
    pytest.param(("nobody", PASSWORD), id="unknown user"),
    pytest.param(("root", ""), id="empty password"),
    pytest.param(("disabled", PASSWORD), id="disabled admin"),
    pytest.param("authsvc_pat_not-a-token", id="unknown bearer token"),
    pytest.param(PASSWORD, id="password as bearer"),
    pytest.param(("root", "authsvc_pat_not-a-token"), id="unknown basic token"),
]


@pytest.mark.parametrize("who", BAD_CREDENTIALS)
def test_every_route_refuses_missing_or_bad_credentials(
        app: Flask, client: FlaskClient, world: int, make_user: Any, who: Who,
        subtests: Any) -> None:
    make_user("disabled", admin=True, disabled=True)
    before = snapshot(app)
    for method, rule in api_rules(app, anonymous=who is None):
        with subtests.test(method=method, rule=rule):
            response = call(client, method, concrete(rule, world), who, json={})
            error_of(response, 401, "UNAUTHORIZED")
            assert response.headers["WWW-Authenticate"].startswith("Basic ")
            assert snapshot(app) == before


def test_refresh_token_is_not_an_api_credential(app: Flask, client: FlaskClient,
                                                world: int) -> None:
    refresh_token = docker_login(client)
    before = snapshot(app)
    error_of(call(client, "GET", "/me", ("alice", refresh_token)), 401)
    error_of(call(client, "GET", "/me", refresh_token), 401)
    assert snapshot(app) == before


def test_me_describes_the_password_caller_without_secrets(client: FlaskClient,
                                                          people: None) -> None:
    response = call(client, "GET", "/me", ALICE)
    assert response.status_code == 200
    body = response.json
    assert {k: body[k] for k in ("username", "admin", "disabled", "robot",
                                 "authenticated_with")} == {
        "username": "alice", "admin": False, "disabled": False, "robot": False,
        "authenticated_with": "password"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["created_at"])
    assert not any("password" in key or "hash" in key for key in body)


# -- POST /users -----------------------------------------------------------------------------

def test_admin_creates_users_who_can_then_log_in(client: FlaskClient, people: None) -> None:
    response = call(client, "POST", "/users", ROOT,
                    json={"username": "carol", "password": NEW_PASSWORD, "admin": True})
    assert response.status_code == 201
    assert {k: response.json[k] for k in ("username", "admin", "disabled", "robot")} == {
        "username": "carol", "admin": True, "disabled": False, "robot": False}
    assert call(client, "GET", "/users", ("carol", NEW_PASSWORD)).status_code == 200


@pytest.mark.parametrize("who", [pytest.param(ALICE, id="user"),
                                 pytest.param("token", id="admin's access token")])
def test_only_password_admins_create_users(app: Flask, client: FlaskClient, people: None,
                                           who: Who) -> None:
    if who == "token":
        who = new_token(client, "root", permission="delete")
    before = snapshot(app)
    response = call(client, "POST", "/users", who,
                    json={"username": "carol", "password": NEW_PASSWORD, "admin": True})
    assert "admin" in error_of(response, 403, "DENIED")
    assert snapshot(app) == before


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"username": "carol", "password": NEW_PASSWORD, "shell": "/bin/sh"}, 422, None),
    ({"password": NEW_PASSWORD}, 422, None),
    ({"username": "Carol", "password": NEW_PASSWORD}, 422, "NAME_INVALID"),
    ({"username": "carol/x", "password": NEW_PASSWORD}, 422, "NAME_INVALID"),
    ({"username": "", "password": NEW_PASSWORD}, 422, "NAME_INVALID"),
    ({"username": "c" * 300, "password": NEW_PASSWORD}, 422, "NAME_INVALID"),
    ({"username": 7, "password": NEW_PASSWORD}, 422, None),
    ({"username": "carol", "password": NEW_PASSWORD, "admin": "yes"}, 422, None),
    ({"username": "carol", "password": NEW_PASSWORD, "admin": 1}, 422, None),
    ({"username": "carol", "password": "short"}, 422, "PASSWORD_INVALID"),
    ({"username": "carol", "password": "x" * 73}, 422, "PASSWORD_INVALID"),
    ({"username": "carol"}, 422, None),
    ({"username": "carol", "password": NEW_PASSWORD, "robot": True}, 422, None),
    ({"username": "alice", "password": NEW_PASSWORD}, 409, "CONFLICT"),
    ([{"username": "carol", "password": NEW_PASSWORD}], 400, "BAD_REQUEST"),
    ("carol", 400, "BAD_REQUEST"),
])
def test_bad_new_user_is_refused_and_changes_nothing(app: Flask, client: FlaskClient,
                                                     people: None, body: Any, status: int,
                                                     code: str | None) -> None:
    before = snapshot(app)
    error_of(call(client, "POST", "/users", ROOT, json=body), status, code)
    assert snapshot(app) == before


def test_body_that_is_not_json_is_400(app: Flask, client: FlaskClient, people: None) -> None:
    before = snapshot(app)
    response = call(client, "POST", "/users", ROOT, data="username=carol",
                    content_type="application/x-www-form-urlencoded")
    error_of(response, 400, "BAD_REQUEST")
    error_of(call(client, "POST", "/users", ROOT, data="{not json",
                  content_type="application/json"), 400, "BAD_REQUEST")
    assert snapshot(app) == before


# -- GET /users, GET /users/<name> -----------------------------------------------------------

def test_users_are_paged_with_the_total(client: FlaskClient, make_user: Any) -> None:
    make_user("root", admin=True)
    for i in range(24):
        make_user(f"user{i:02}")
    pages = [call(client, "GET", f"/users?page={p}&per_page=10", ROOT).json for p in (1, 2, 3, 4)]
    assert [len(p["items"]) for p in pages] == [10, 10, 5, 0]
    assert {(p["total"], p["per_page"]) for p in pages} == {(25, 10)}
    assert [p["page"] for p in pages] == [1, 2, 3, 4]
    names = [u["username"] for p in pages for u in p["items"]]
    assert names == sorted(["root", *(f"user{i:02}" for i in range(24))])


def test_users_default_page(client: FlaskClient, people: None) -> None:
    body = call(client, "GET", "/users", ROOT).json
    assert (body["page"], body["per_page"], body["total"]) == (1, 20, 3)
    assert [u["username"] for u in body["items"]] == ["alice", "bob", "root"]


@pytest.mark.parametrize("query", ["page=0", "page=-1", "page=abc", "page=1.5", "per_page=0",
                                   "per_page=101", "per_page=", "page=99999999999999999999"])
def test_bad_page_arguments_are_422(client: FlaskClient, people: None, query: str) -> None:
    error_of(call(client, "GET", f"/users?{query}", ROOT), 422, "INVALID_REQUEST")


def test_only_admins_list_users(client: FlaskClient, people: None) -> None:
    error_of(call(client, "GET", "/users", ALICE), 403, "DENIED")


@pytest.mark.parametrize(("who", "name", "status"), [
    (ROOT, "alice", 200),
    (ALICE, "alice", 200),
    (ALICE, "bob", 403),
    (ALICE, "root", 403),
    (ROOT, "nobody", 404),
    (ALICE, "nobody", 403),
])
def test_reading_one_user(client: FlaskClient, people: None, who: Who, name: str,
                          status: int) -> None:
    response = call(client, "GET", f"/users/{name}", who)
    if status == 200:
        assert response.status_code == 200
        assert response.json["username"] == name
    else:
        error_of(response, status)


# -- PATCH /users/<name> ---------------------------------------------------------------------

def test_user_changes_own_password_and_loses_refresh_tokens(client: FlaskClient,
                                                            people: None) -> None:
    docker_login(client)
    response = call(client, "PATCH", "/users/alice", ALICE, json={"password": NEW_PASSWORD})
    assert response.status_code == 200
    assert response.json["username"] == "alice"
    error_of(call(client, "GET", "/me", ALICE), 401)
    new = ("alice", NEW_PASSWORD)
    assert call(client, "GET", "/me", new).status_code == 200
    assert call(client, "GET", "/users/alice/refresh-tokens", new).json["items"] == []


def test_admin_changes_anyones_password(client: FlaskClient, people: None) -> None:
    assert call(client, "PATCH", "/users/bob", ROOT,
                json={"password": NEW_PASSWORD}).status_code == 200
    assert call(client, "GET", "/me", ("bob", NEW_PASSWORD)).status_code == 200


@pytest.mark.parametrize(("name", "body"), [
    pytest.param("bob", {"password": NEW_PASSWORD}, id="someone else's password"),
    pytest.param("alice", {"admin": True}, id="make self admin"),
    pytest.param("bob", {"disabled": True}, id="disable someone"),
    pytest.param("alice", {"password": NEW_PASSWORD, "admin": True}, id="password and admin"),
    pytest.param("root", {"admin": False}, id="demote the admin"),
])
def test_user_may_not_change_others_or_own_flags(app: Flask, client: FlaskClient,
                                                 people: None, name: str,
                                                 body: dict[str, Any]) -> None:
    before = snapshot(app)
    error_of(call(client, "PATCH", f"/users/{name}", ALICE, json=body), 403, "DENIED")
    assert snapshot(app) == before


def test_password_cannot_be_changed_with_an_access_token(app: Flask, client: FlaskClient,
                                                         people: None) -> None:
    alice_token = new_token(client, "alice", permission="delete")
    root_token = new_token(client, "root", permission="delete")
    before = snapshot(app)
    for who in (alice_token, ("alice", alice_token)):
        message = error_of(call(client, "PATCH", "/users/alice", who,
                                json={"password": NEW_PASSWORD}), 403, "DENIED")
        assert "password" in message
    error_of(call(client, "PATCH", "/users/bob", root_token,
                  json={"password": NEW_PASSWORD}), 403, "DENIED")
    error_of(call(client, "PATCH", "/users/bob", root_token, json={"disabled": True}), 403)
    assert snapshot(app) == before


def test_admin_disables_and_enables_a_user(client: FlaskClient, people: None) -> None:
    docker_login(client)
    response = call(client, "PATCH", "/users/alice", ROOT, json={"disabled": True})
    assert response.status_code == 200 and response.json["disabled"] is True
    error_of(call(client, "GET", "/me", ALICE), 401)
    assert call(client, "GET", "/users/alice/refresh-tokens", ROOT).json["items"] == []
    assert call(client, "PATCH", "/users/alice", ROOT,
                json={"disabled": False}).json["disabled"] is False
    assert call(client, "GET", "/me", ALICE).status_code == 200


def test_admin_promotes_and_demotes(client: FlaskClient, people: None) -> None:
    assert call(client, "PATCH", "/users/alice", ROOT, json={"admin": True}).json["admin"]
    assert call(client, "GET", "/users", ALICE).status_code == 200
    assert call(client, "PATCH", "/users/root", ALICE, json={"admin": False}).status_code == 200
    error_of(call(client, "GET", "/users", ROOT), 403)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"password": "short"}, 422, "PASSWORD_INVALID"),
    ({"password": 12345678}, 422, None),
    ({"admin": "true"}, 422, None),
    ({"disabled": None}, 422, None),
    ({"username": "eve"}, 422, None),
    ({"robot": True}, 422, None),
    (["password"], 400, "BAD_REQUEST"),
])
def test_bad_user_change_is_refused_and_changes_nothing(app: Flask, client: FlaskClient,
                                                        people: None, body: Any, status: int,
                                                        code: str | None) -> None:
    before = snapshot(app)
    error_of(call(client, "PATCH", "/users/alice", ROOT, json=body), status, code)
    assert snapshot(app) == before


def test_changing_an_unknown_user_is_404(app: Flask, client: FlaskClient, people: None) -> None:
    before = snapshot(app)
    error_of(call(client, "PATCH", "/users/nobody", ROOT, json={"admin": True}), 404)
    error_of(call(client, "PATCH", "/users/nobody", ROOT, json={"password": NEW_PASSWORD}), 404)
    assert snapshot(app) == before


def test_robot_has_no_password_to_change(app: Flask, client: FlaskClient, people: None) -> None:
    call(client, "POST", "/users", ROOT, json={"username": "ci", "robot": True})
    before = snapshot(app)
    error_of(call(client, "PATCH", "/users/ci", ROOT, json={"password": NEW_PASSWORD}), 422)
    assert snapshot(app) == before


# -- the last enabled admin ------------------------------------------------------------------

@pytest.mark.parametrize(("method", "body"), [
    pytest.param("PATCH", {"admin": False}, id="demote"),
    pytest.param("PATCH", {"disabled": True}, id="disable"),
    pytest.param("DELETE", None, id="delete"),
    # A refused request changes nothing: the password must not change either.
    pytest.param("PATCH", {"password": NEW_PASSWORD, "admin": False}, id="password+demote"),
    pytest.param("PATCH", {"password": NEW_PASSWORD, "disabled": True}, id="password+disable"),
])
def test_last_enabled_admin_stays(app: Flask, client: FlaskClient, people: None,
                                  make_user: Any, method: str,
                                  body: dict[str, Any] | None) -> None:
    make_user("retired", admin=True, disabled=True)
    docker_login(client, "root")
    before = snapshot(app)
    response = call(client, method, "/users/root", ROOT, json=body)
    assert "last enabled admin" in error_of(response, 409, "CONFLICT")
    assert snapshot(app) == before


def test_an_admin_may_go_once_another_is_enabled(client: FlaskClient, people: None) -> None:
    call(client, "PATCH", "/users/alice", ROOT, json={"admin": True})
    assert call(client, "PATCH", "/users/root", ROOT, json={"disabled": True}).status_code == 200
    assert call(client, "DELETE", "/users/root", ALICE).status_code == 204


# -- DELETE /users/<name> --------------------------------------------------------------------

def test_deleting_a_user_removes_grants_and_tokens(app: Flask, client: FlaskClient,
                                                   people: None) -> None:
    call(client, "PUT", "/repositories/alice/httpd/-/grants/bob", ALICE,
         json={"actions": ["pull"]})
    call(client, "PUT", "/namespaces/alice/grants/bob", ALICE, json={"actions": ["pull"]})
    bob_token = new_token(client, "bob")
    docker_login(client, "bob")
    response = call(client, "DELETE", "/users/bob", ROOT)
    assert response.status_code == 204 and response.get_data() == b""
    error_of(call(client, "GET", "/users/bob", ROOT), 404)
    error_of(call(client, "GET", "/me", BOB), 401)
    error_of(call(client, "GET", "/me", bob_token), 401)
    after = snapshot(app)
    assert [u[0] for u in after["users"]] == ["alice", "root"]
    assert after["grants"] == [] and after["access_tokens"] == []
    assert after["refresh_tokens"] == []


def test_a_new_account_inherits_nothing_of_a_deleted_one(app: Flask, client: FlaskClient,
                                                         people: None, make_user: Any,
                                                         decode: Decode) -> None:
    """alice granted bob pull on ``alice/*`` and made ``alice/web`` public; alice is deleted
    and a new alice created: bob could still pull new alice's repositories, and alice/web was
    still public."""
    make_user("alicex")
    make_user("carol")
    assert call(client, "POST", "/repositories", ALICE,
                json={"name": "alice/web", "visibility": "public"}).status_code == 201
    call(client, "PUT", "/namespaces/alice/grants/bob", ALICE, json={"actions": ["pull"]})
    call(client, "PUT", "/repositories/alice/web/-/grants/carol", ALICE,
         json={"actions": ["push"]})
    call(client, "PUT", "/repositories/bob/app/-/grants/alice", BOB, json={"actions": ["pull"]})
    call(client, "PUT", "/namespaces/alicex/grants/alice", ("alicex", PASSWORD),
         json={"actions": ["pull"]})
    call(client, "PUT", "/namespaces/alicex/grants/bob", ("alicex", PASSWORD),
         json={"actions": ["pull"]})
    assert call(client, "POST", "/repositories", ("alicex", PASSWORD),
                json={"name": "alicex/web", "visibility": "public"}).status_code == 201
    assert token_actions(client, decode, "alice/web", None, "pull") == {"pull"}

    assert call(client, "DELETE", "/users/alice", ROOT).status_code == 204
    after = snapshot(app)
    assert after["repositories"] == [("alicex/web", "public")]
    assert [(g.username, g.target) for g in after["grants"]] == [("bob", "alicex/*")]
    deleted = [e for e in audit_events(app) if e.action == "user.deleted"]
    assert [(e.actor, e.target) for e in deleted] == [("root", "alice")]

    make_user("alice")
    assert token_actions(client, decode, "alice/web", None, "pull") == set()
    assert token_actions(client, decode, "alice/web", BOB) == set()
    assert token_actions(client, decode, "alice/new", BOB) == set()
    assert token_actions(client, decode, "alice/web", ("carol", PASSWORD)) == set()
    assert token_actions(client, decode, "bob/app", ALICE) == set()
    assert token_actions(client, decode, "alicex/web", ALICE) == {"pull"}
    assert token_actions(client, decode, "alicex/web", BOB) == {"pull"}
    assert call(client, "GET", "/repositories/alice/web", ALICE).status_code == 404


@pytest.mark.parametrize("who", [pytest.param(ALICE, id="user"),
                                 pytest.param(BOB, id="self"),
                                 pytest.param("token", id="admin's access token")])
def test_only_password_admins_delete_users(app: Flask, client: FlaskClient, people: None,
                                           who: Who) -> None:
    if who == "token":
        who = new_token(client, "root", permission="delete")
    before = snapshot(app)
    error_of(call(client, "DELETE", "/users/bob", who), 403, "DENIED")
    assert snapshot(app) == before


def test_deleting_an_unknown_user_is_404(client: FlaskClient, people: None) -> None:
    error_of(call(client, "DELETE", "/users/nobody", ROOT), 404, "NOT_FOUND")


# -- refresh tokens --------------------------------------------------------------------------

def test_user_lists_and_revokes_own_refresh_tokens(client: FlaskClient, people: None) -> None:
    refresh_token = docker_login(client)
    (row,) = call(client, "GET", "/users/alice/refresh-tokens", ALICE).json["items"]
    assert {row["service"], row["client_id"]} == {"registry", "docker"}
    assert refresh_token not in str(row) and "token" not in row
    response = call(client, "DELETE", f"/users/alice/refresh-tokens/{row['id']}", ALICE)
    assert response.status_code == 204
    assert call(client, "GET", "/users/alice/refresh-tokens", ALICE).json["items"] == []
    refresh = client.post("/token", data={"grant_type": "refresh_token", "service": "registry",
                                          "client_id": "docker", "refresh_token": refresh_token})
    assert refresh.status_code == 401


def test_admin_lists_and_revokes_anyones_refresh_tokens(client: FlaskClient,
                                                        people: None) -> None:
    docker_login(client)
    (row,) = call(client, "GET", "/users/alice/refresh-tokens", ROOT).json["items"]
    assert call(client, "DELETE", f"/users/alice/refresh-tokens/{row['id']}",
                ROOT).status_code == 204
    assert call(client, "GET", "/users/alice/refresh-tokens", ROOT).json["items"] == []


@pytest.mark.parametrize(("method", "path", "who", "status"), [
    pytest.param("GET", "/users/alice/refresh-tokens", BOB, 403, id="list another's"),
    pytest.param("DELETE", "/users/alice/refresh-tokens/{id}", BOB, 403, id="revoke another's"),
    pytest.param("DELETE", "/users/bob/refresh-tokens/{id}", BOB, 404,
                 id="another's id under own name"),
    pytest.param("DELETE", "/users/alice/refresh-tokens/{id}", "token", 403,
                 id="with an access token"),
    pytest.param("DELETE", "/users/alice/refresh-tokens/999", ALICE, 404, id="unknown id"),
    pytest.param("GET", "/users/nobody/refresh-tokens", ROOT, 404, id="unknown user"),
])
def test_refresh_tokens_refused(app: Flask, client: FlaskClient, people: None, method: str,
                                path: str, who: Who, status: int) -> None:
    docker_login(client)
    if who == "token":
        who = new_token(client, "alice", permission="delete")
    (row,) = call(client, "GET", "/users/alice/refresh-tokens", ALICE).json["items"]
    before = snapshot(app)
    error_of(call(client, method, path.format(id=row["id"]), who), status)
    assert snapshot(app) == before


# -- the OpenAPI document --------------------------------------------------------------------

def test_openapi_document_is_public_and_names_every_route(app: Flask,
                                                          client: FlaskClient) -> None:
    response: Any = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.is_json
    document = response.json
    assert document["openapi"].startswith("3")
    paths = document["paths"]

    def shape(template: str) -> str:
        return re.sub(r"\{[^}]+\}", "{}", template)

    documented = {shape(p): {m.upper() for m in ops} for p, ops in paths.items()}
    for method, rule in api_rules(app):
        template = re.sub(r"<(?:[^<>:]*:)?(\w+)>", r"{\1}", rule).removeprefix("/api/v1")
        assert method in documented.get(shape(template), set()), f"{method} {template}"


def test_openapi_path_parameters_match_the_templates(client: FlaskClient) -> None:
    document: Any = client.get("/api/v1/openapi.json").json
    for template, operations in document["paths"].items():
        placeholders = set(re.findall(r"\{([^}]+)\}", template))
        for method, operation in operations.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == placeholders, f"{method} {template}"

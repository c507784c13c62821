"""Personal access tokens and robot accounts, through the API and ``/token`` (issue: access
tokens): created, listed and revoked over ``/api/v1/users/<name>/tokens``, used as the Basic
password on ``/token`` and the API or as a Bearer secret on the API.

A token never grants more than its permission, its repositories and its owner's rights at that
moment; a revoked or expired one is refused with 401. Every refused change is followed by a
check that the database is exactly as before.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.db.models import AccessToken, db
from authsvc.db.services import services_of
from tests.api_helpers import ALICE, BOB, ROOT, Who, call, error_of, new_token, snapshot
from tests.conftest import PASSWORD
from tests.token_helpers import Decode, get_token
from tests.token_helpers import access_of as access


def create(client: FlaskClient, owner: str = "alice", who: Who = None, **body: Any) -> Any:
    """POST a token for ``owner`` (by ``owner`` with a password unless ``who`` says else)."""
    body = {"name": "ci", "permission": "write", **body}
    return call(client, "POST", f"/users/{owner}/tokens", who or (owner, PASSWORD), json=body)


def password_grant(client: FlaskClient, user: str, password: str, *scopes: str) -> Any:
    return client.post("/token", data={"grant_type": "password", "username": user,
                                       "password": password, "service": "registry",
                                       "client_id": "ci", "scope": list(scopes)})


def granted(client: FlaskClient, decode: Decode, user: str, secret: str,
            scope: str) -> list[str]:
    """The actions GET /token grants on the one repository or resource in ``scope``."""
    (actions,) = access(decode, get_token(client, scope, auth=(user, secret))).values()
    return actions


def expire(app: Flask, token_id: int) -> None:
    with app.app_context():
        row = db.session.get(AccessToken, token_id)
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()


def token_id(client: FlaskClient, owner: str = "alice") -> int:
    (info,) = call(client, "GET", f"/users/{owner}/tokens", (owner, PASSWORD)).json["items"]
    return int(info["id"])


@pytest.fixture
def people(make_user: Any) -> None:
    make_user("root", admin=True)
    make_user("alice")
    make_user("bob")


# -- create, list, revoke --------------------------------------------------------------------

def test_created_token_is_shown_once_and_stored_hashed(app: Flask, client: FlaskClient,
                                                       people: None) -> None:
    response = create(client, name="laptop", permission="read", expires_in_days=30,
                      repositories=["alice/web", "alice/*", "alice/web"])
    assert response.status_code == 201
    body = response.json
    secret = body.pop("token")
    assert secret.startswith("authsvc_pat_") and len(secret) > 40
    assert body["name"] == "laptop" and body["permission"] == "read"
    assert body["repositories"] == ["alice/*", "alice/web"]
    assert body["last_used_at"] is None
    created = datetime.fromisoformat(body["created_at"])
    expires = datetime.fromisoformat(body["expires_at"])
    assert expires - created == timedelta(days=30)
    listed = call(client, "GET", "/users/alice/tokens", ALICE)
    assert listed.json == {"items": [body]}
    assert secret not in listed.get_data(as_text=True)
    with app.app_context():
        row = db.session.get(AccessToken, body["id"])
        assert row is not None and secret not in row.secret_hash
        assert all(secret not in str(value) for value in vars(row).values())


def test_tokens_without_expiry_or_limits(client: FlaskClient, people: None) -> None:
    body = create(client).json
    assert (body["expires_at"], body["repositories"]) == (None, [])


def test_admin_creates_lists_and_revokes_tokens_for_others(client: FlaskClient, people: None,
                                                           decode: Decode) -> None:
    response = create(client, "bob", who=ROOT, permission="read")
    assert response.status_code == 201
    secret = response.json["token"]
    assert granted(client, decode, "bob", secret, "repository:bob/app:push,pull") == ["pull"]
    (info,) = call(client, "GET", "/users/bob/tokens", ROOT).json["items"]
    assert call(client, "DELETE", f"/users/bob/tokens/{info['id']}", ROOT).status_code == 204
    assert call(client, "GET", "/users/bob/tokens", ROOT).json["items"] == []


@pytest.mark.parametrize(("body", "status"), [
    pytest.param({"permission": "admin"}, 422, id="unknown permission"),
    pytest.param({"permission": ["read"]}, 422, id="permission not a string"),
    pytest.param({"name": ""}, 422, id="empty name"),
    pytest.param({"name": "x" * 101}, 422, id="long name"),
    pytest.param({"name": "a\nb"}, 422, id="unprintable name"),
    pytest.param({"expires_in_days": 0}, 422, id="zero days"),
    pytest.param({"expires_in_days": -1}, 422, id="negative days"),
    pytest.param({"expires_in_days": 3651}, 422, id="too many days"),
    pytest.param({"expires_in_days": 10**40}, 422, id="huge days"),
    pytest.param({"expires_in_days": "7"}, 422, id="days as text"),
    pytest.param({"expires_in_days": True}, 422, id="days as bool"),
    pytest.param({"expires_in_days": 1.5}, 422, id="days as float"),
    pytest.param({"repositories": "alice/web"}, 422, id="repositories not a list"),
    pytest.param({"repositories": [1]}, 422, id="repository not a string"),
    pytest.param({"repositories": ["Alice/web"]}, 422, id="invalid repository"),
    pytest.param({"repositories": ["Alice/*"]}, 422, id="invalid namespace"),
    pytest.param({"repositories": [f"alice/r{i}" for i in range(51)]}, 422, id="too many"),
    pytest.param({"scopes": ["pull"]}, 422, id="unknown field"),
])
def test_bad_new_token_changes_nothing(app: Flask, client: FlaskClient, people: None,
                                       body: dict[str, Any], status: int) -> None:
    before = snapshot(app)
    error_of(create(client, **body), status)
    assert snapshot(app) == before


@pytest.mark.parametrize("body", [pytest.param(["ci"], id="list"),
                                  pytest.param("ci", id="string")])
def test_token_body_that_is_not_an_object_is_400(app: Flask, client: FlaskClient,
                                                 people: None, body: Any) -> None:
    before = snapshot(app)
    error_of(call(client, "POST", "/users/alice/tokens", ALICE, json=body), 400, "BAD_REQUEST")
    error_of(call(client, "POST", "/users/alice/tokens", ALICE, json={"name": "ci"}), 422)
    assert snapshot(app) == before


@pytest.mark.parametrize(("owner", "who", "status"), [
    pytest.param("alice", "bob", 403, id="for another user"),
    pytest.param("alice", "own token", 403, id="with own delete token"),
    pytest.param("alice", "own token as Basic password", 403, id="with own token, Basic"),
    pytest.param("bob", "admin's token", 403, id="with an admin's token"),
    pytest.param("nobody", "admin", 404, id="unknown user"),
])
def test_creating_tokens_refused(app: Flask, client: FlaskClient, people: None, owner: str,
                                 who: str, status: int) -> None:
    alice_token = new_token(client, "alice", permission="delete")
    root_token = new_token(client, "root", permission="delete")
    callers: dict[str, Who] = {"bob": BOB, "admin": ROOT, "own token": alice_token,
                               "admin's token": root_token,
                               "own token as Basic password": ("alice", alice_token)}
    before = snapshot(app)
    error_of(create(client, owner, who=callers[who], permission="delete"), status)
    assert snapshot(app) == before


@pytest.mark.parametrize(("path", "who", "status"), [
    pytest.param("/users/alice/tokens", BOB, 403, id="another user's"),
    pytest.param("/users/nobody/tokens", ROOT, 404, id="unknown user"),
])
def test_listing_tokens_refused(client: FlaskClient, people: None, path: str, who: Who,
                                status: int) -> None:
    new_token(client)
    error_of(call(client, "GET", path, who), status)


def test_revoked_token_is_refused_everywhere(client: FlaskClient, people: None,
                                             decode: Decode) -> None:
    secret = new_token(client)
    assert granted(client, decode, "alice", secret, "repository:alice/a:pull") == ["pull"]
    response = call(client, "DELETE", f"/users/alice/tokens/{token_id(client)}", ALICE)
    assert response.status_code == 204 and response.get_data() == b""
    assert call(client, "GET", "/users/alice/tokens", ALICE).json["items"] == []
    assert_refused_everywhere(client, "alice", secret)


def assert_refused_everywhere(client: FlaskClient, user: str, secret: str) -> None:
    """GET /token (Basic), POST /token (password grant) and the API (Basic, Bearer): 401."""
    response = get_token(client, "repository:alice/a:pull", auth=(user, secret))
    error_of(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    post = password_grant(client, user, secret, "repository:alice/a:pull")
    assert (post.status_code, post.json["error"]) == (401, "invalid_grant")
    error_of(call(client, "GET", "/me", (user, secret)), 401)
    error_of(call(client, "GET", "/me", secret), 401)


@pytest.mark.parametrize(("path", "who", "status"), [
    pytest.param("/users/alice/tokens/{id}", BOB, 403, id="another user"),
    pytest.param("/users/bob/tokens/{id}", BOB, 404, id="another's id under own name"),
    pytest.param("/users/alice/tokens/{id}", "token", 403, id="with a token"),
    pytest.param("/users/alice/tokens/9999", ALICE, 404, id="unknown id"),
    pytest.param("/users/alice/tokens/abc", ALICE, 404, id="not an id"),
])
def test_revoking_tokens_refused(app: Flask, client: FlaskClient, people: None,
                                 decode: Decode, path: str, who: Who, status: int) -> None:
    secret = new_token(client)
    if who == "token":
        who = secret
    before = snapshot(app)
    error_of(call(client, "DELETE", path.format(id=token_id(client)), who), status)
    assert snapshot(app) == before
    assert granted(client, decode, "alice", secret, "repository:alice/a:pull") == ["pull"]


def test_expired_token_is_refused_everywhere(app: Flask, client: FlaskClient, people: None,
                                             decode: Decode) -> None:
    secret = new_token(client, expires_in_days=1)
    assert granted(client, decode, "alice", secret, "repository:alice/a:pull") == ["pull"]
    expire(app, token_id(client))
    assert_refused_everywhere(client, "alice", secret)


# -- what a token grants on /token -----------------------------------------------------------

@pytest.mark.parametrize(("permission", "expected"), [
    ("read", ["pull"]),
    ("write", ["pull", "push"]),
    ("delete", ["delete", "pull", "push"]),
])
def test_permission_caps_actions_on_own_repository(client: FlaskClient, people: None,
                                                   decode: Decode, permission: str,
                                                   expected: list[str]) -> None:
    secret = new_token(client, permission=permission)
    scope = "repository:alice/httpd:pull,push,delete"
    assert sorted(granted(client, decode, "alice", secret, scope)) == expected
    post = password_grant(client, "alice", secret, scope)
    assert post.status_code == 200
    assert sorted(access(decode, post)["repository:alice/httpd"]) == expected


def test_star_with_a_read_token_is_only_pull(client: FlaskClient, people: None,
                                             decode: Decode) -> None:
    secret = new_token(client, permission="read")
    assert granted(client, decode, "alice", secret, "repository:alice/httpd:*") == ["pull"]


def test_token_limited_to_a_repository(client: FlaskClient, people: None,
                                       decode: Decode) -> None:
    secret = new_token(client, permission="write", repositories=["alice/a"])
    response = get_token(client, "repository:alice/a:pull,push", "repository:alice/b:pull,push",
                         "repository:alice/a/b:pull", auth=("alice", secret))
    assert access(decode, response) == {"repository:alice/a": ["pull", "push"],
                                        "repository:alice/b": [],
                                        "repository:alice/a/b": []}


def test_token_limited_to_a_namespace(client: FlaskClient, people: None,
                                      decode: Decode) -> None:
    call(client, "PUT", "/namespaces/bob/grants/alice", BOB, json={"actions": ["pull", "push"]})
    secret = new_token(client, permission="write", repositories=["bob/*"])
    response = get_token(client, "repository:bob/x/y:pull,push", "repository:alice/a:pull",
                         "repository:bobby/a:pull", auth=("alice", secret))
    assert access(decode, response) == {"repository:bob/x/y": ["pull", "push"],
                                        "repository:alice/a": [],
                                        "repository:bobby/a": []}


def test_token_never_grants_more_than_the_owner_holds(client: FlaskClient, people: None,
                                                      decode: Decode) -> None:
    call(client, "PUT", "/repositories/bob/app/-/grants/alice", BOB, json={"actions": ["pull"]})
    secret = new_token(client, permission="delete")
    scope = "repository:bob/app:pull,push,delete"
    assert granted(client, decode, "alice", secret, scope) == ["pull"]
    assert granted(client, decode, "alice", secret, "repository:bob/other:pull") == []
    assert call(client, "DELETE", "/repositories/bob/app/-/grants/alice", BOB).status_code == 204
    assert granted(client, decode, "alice", secret, scope) == []


def test_token_follows_the_owners_admin_flag(client: FlaskClient, people: None,
                                             decode: Decode, make_user: Any) -> None:
    make_user("second", admin=True)
    secret = new_token(client, "root", permission="write")
    assert granted(client, decode, "root", secret, "repository:bob/app:pull,push") == [
        "pull", "push"]
    call(client, "PATCH", "/users/root", ("second", PASSWORD), json={"admin": False})
    assert granted(client, decode, "root", secret, "repository:bob/app:pull,push") == []


def test_token_dies_with_its_owners_account(app: Flask, client: FlaskClient, people: None,
                                            decode: Decode) -> None:
    secret = new_token(client)
    call(client, "PATCH", "/users/alice", ROOT, json={"disabled": True})
    assert_refused_everywhere(client, "alice", secret)
    call(client, "PATCH", "/users/alice", ROOT, json={"disabled": False})
    assert granted(client, decode, "alice", secret, "repository:alice/a:pull") == ["pull"]
    call(client, "DELETE", "/users/alice", ROOT)
    call(client, "POST", "/users", ROOT, json={"username": "alice", "password": PASSWORD})
    assert_refused_everywhere(client, "alice", secret)
    assert snapshot(app)["access_tokens"] == []


def test_token_callers_search_but_never_get_the_whole_catalog(
        client: FlaskClient, people: None, decode: Decode) -> None:
    """``search`` (filtered by the token's limit at /v1/search) but never ``*``, the
    registry's unfiltered /v2/_catalog, whatever the token and its owner."""
    secret = new_token(client, "root", permission="delete")
    assert granted(client, decode, "root", secret, "registry:catalog:*") == []
    assert granted(client, decode, "root", secret, "registry:catalog:*,search") == ["search"]
    assert granted(client, decode, "root", PASSWORD, "registry:catalog:*") == ["*"]
    limited = new_token(client, "alice", permission="read", repositories=["alice/a"])
    assert granted(client, decode, "alice", limited, "registry:catalog:search") == ["search"]


@pytest.mark.parametrize("user", ["bob", "root", "nobody"])
def test_basic_username_must_own_the_token(app: Flask, client: FlaskClient, people: None,
                                           user: str) -> None:
    secret = new_token(client)
    before = snapshot(app)
    error_of(get_token(client, "repository:alice/a:pull", auth=(user, secret)), 401)
    assert password_grant(client, user, secret, "repository:alice/a:pull").status_code == 401
    error_of(call(client, "GET", "/me", (user, secret)), 401)
    error_of(call(client, "POST", "/repositories", (user, secret),
                  json={"name": "alice/x"}), 401)
    assert snapshot(app) == before


def test_token_is_not_a_bearer_credential_on_token_endpoint(client: FlaskClient,
                                                            people: None) -> None:
    secret = new_token(client)
    response = client.get("/token?service=registry&scope=repository:alice/a:pull",
                          headers={"Authorization": f"Bearer {secret}"})
    error_of(response, 401)


def test_token_login_gets_no_refresh_token(app: Flask, client: FlaskClient,
                                           people: None) -> None:
    """A refresh token would outlive the access token's revocation and drop its limits."""
    secret = new_token(client, permission="read")
    login: Any = client.get("/token?account=alice&client_id=docker&offline_token=true"
                            "&service=registry", auth=("alice", secret))
    post: Any = client.post("/token", data={
        "grant_type": "password", "username": "alice", "password": secret,
        "service": "registry", "client_id": "ci", "access_type": "offline"})
    assert (login.status_code, post.status_code) == (200, 200)
    assert "refresh_token" not in login.json and "refresh_token" not in post.json
    with app.app_context():
        assert services_of(app).refresh_tokens.list_for("alice") == []


def test_using_a_token_records_last_use(client: FlaskClient, people: None) -> None:
    secret = new_token(client)
    assert call(client, "GET", "/me", secret).status_code == 200
    (info,) = call(client, "GET", "/users/alice/tokens", ALICE).json["items"]
    assert info["last_used_at"] is not None


# -- tokens on the API -----------------------------------------------------------------------

@pytest.mark.parametrize("as_basic", [False, True], ids=["bearer", "basic"])
def test_me_with_a_token(client: FlaskClient, people: None, as_basic: bool) -> None:
    secret = new_token(client, permission="read")
    who: Who = ("alice", secret) if as_basic else secret
    response = call(client, "GET", "/me", who)
    assert response.status_code == 200
    assert (response.json["username"], response.json["authenticated_with"]) == (
        "alice", "access_token")


def test_read_token_makes_no_api_changes(app: Flask, client: FlaskClient, people: None) -> None:
    call(client, "POST", "/repositories", ALICE, json={"name": "alice/web"})
    secret = new_token(client, permission="read")
    before = snapshot(app)
    for method, path, body in [
        ("POST", "/repositories", {"name": "alice/new"}),
        ("PATCH", "/repositories/alice/web", {"visibility": "public"}),
        ("DELETE", "/repositories/alice/web", None),
        ("PUT", "/repositories/alice/web/-/grants/bob", {"actions": ["pull"]}),
        ("PUT", "/namespaces/alice/grants/bob", {"actions": ["pull"]}),
        ("POST", "/users/alice/tokens", {"name": "more", "permission": "delete"}),
        ("PATCH", "/users/alice", {"password": "battery staple"}),
    ]:
        error_of(call(client, method, path, secret, json=body), 403, "DENIED")
    assert snapshot(app) == before
    assert call(client, "GET", "/repositories/alice/web", secret).status_code == 200


def test_write_token_manages_only_what_it_is_limited_to(app: Flask, client: FlaskClient,
                                                        people: None) -> None:
    secret = new_token(client, permission="write", repositories=["alice/a"])
    assert call(client, "POST", "/repositories", secret, json={"name": "alice/a"}).status_code \
        == 201
    before = snapshot(app)
    error_of(call(client, "POST", "/repositories", secret, json={"name": "alice/b"}), 403)
    error_of(call(client, "POST", "/repositories", secret, json={"name": "bob/a"}), 403)
    assert snapshot(app) == before


# -- robot accounts --------------------------------------------------------------------------

@pytest.fixture
def robot(client: FlaskClient, people: None) -> str:
    """A robot account ``ci`` with a write token made by the admin; returns the token."""
    response = call(client, "POST", "/users", ROOT, json={"username": "ci", "robot": True})
    assert response.status_code == 201
    assert (response.json["robot"], response.json["admin"]) == (True, False)
    token = create(client, "ci", who=ROOT, permission="write")
    assert token.status_code == 201
    return str(token.json["token"])


def test_robot_pushes_to_its_own_namespace_with_a_token(client: FlaskClient, robot: str,
                                                        decode: Decode) -> None:
    response = get_token(client, "repository:ci/app:pull,push", "repository:alice/a:pull",
                         auth=("ci", robot))
    assert access(decode, response) == {"repository:ci/app": ["pull", "push"],
                                        "repository:alice/a": []}
    assert call(client, "GET", "/repositories/ci/app", ROOT).json["visibility"] == "private"
    me = call(client, "GET", "/me", robot).json
    assert (me["username"], me["robot"]) == ("ci", True)


@pytest.mark.parametrize("password", ["", PASSWORD, "authsvc_pat_", "None"])
def test_robot_has_no_password_login(client: FlaskClient, robot: str, password: str) -> None:
    error_of(get_token(client, "repository:ci/app:pull", auth=("ci", password)), 401)
    assert password_grant(client, "ci", password or "x", "repository:ci/app:pull"
                          ).status_code == 401
    error_of(call(client, "GET", "/me", ("ci", password)), 401)


def test_robot_cannot_mint_its_own_tokens(app: Flask, client: FlaskClient, robot: str) -> None:
    before = snapshot(app)
    error_of(create(client, "ci", who=robot, permission="delete"), 403)
    error_of(create(client, "ci", who=("ci", robot), permission="delete"), 403)
    assert snapshot(app) == before


# -- on a clock the test sets ---------------------------------------------------------------------

class Clock:
    """A settable ``now`` for AccessTokens."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def test_a_token_works_until_exactly_its_expiry_and_notes_use_once_a_minute(
        app: Flask, people: None) -> None:
    from authsvc.core.opaque_secrets import as_utc
    from authsvc.db.access_tokens import AccessTokens
    from authsvc.errors import AuthenticationFailed

    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    clock = Clock(start)
    with app.app_context():
        state = services_of(app)
        tokens = AccessTokens(db.session, state.audit, state.reads, now=clock)
        info, secret = tokens.create("alice", "ci", "read", expires_in_days=7)
        assert (info.created_at, info.expires_at) == (start, start + timedelta(days=7))
        clock.at = start + timedelta(seconds=59)
        assert tokens.authenticate(secret).name == "alice"
        clock.at = start + timedelta(seconds=100)
        tokens.authenticate(secret)
        db.session.expire_all()
        assert tokens.list_for("alice")[0].last_used_at == start + timedelta(seconds=59)
        clock.at = start + timedelta(days=7) - timedelta(seconds=1)
        tokens.authenticate(secret)
        clock.at = start + timedelta(days=7)
        with pytest.raises(AuthenticationFailed):
            tokens.authenticate(secret)
        assert as_utc(db.session.get(AccessToken, info.id).expires_at) == clock.at

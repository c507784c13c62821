"""OAuth2 POST /token and refresh tokens (PROTOCOL §1.4, issue: docker login end to end)."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from authsvc.db.models import RefreshToken, db
from authsvc.db.services import Services
from tests.conftest import PASSWORD
from tests.token_helpers import Decode


def post(client: FlaskClient, **form: Any) -> Any:
    return client.post("/token", data=form)


def password_grant(client: FlaskClient, user: str = "alice", **extra: Any) -> Any:
    form = {"grant_type": "password", "username": user, "password": PASSWORD,
            "service": "registry", "client_id": "containerd-client", **extra}
    return post(client, **form)


def docker_login(client: FlaskClient, user: str = "alice") -> str:
    """What `docker login` sends: GET with Basic, offline_token=true, client_id=docker."""
    response = client.get(f"/token?account={user}&client_id=docker&offline_token=true"
                          "&service=registry", auth=(user, PASSWORD))
    assert response.status_code == 200, response.json
    return str(response.json["refresh_token"])


def refresh_grant(client: FlaskClient, secret: str, **extra: Any) -> Any:
    form = {"grant_type": "refresh_token", "refresh_token": secret,
            "service": "registry", "client_id": "docker",
            "scope": "repository:alice/httpd:push,pull", **extra}
    return post(client, **form)


@pytest.fixture
def alice(make_user: Any) -> str:
    return str(make_user("alice"))


def test_password_grant_answers_both_token_fields_and_scope(client: FlaskClient, alice: str,
                                                            decode: Decode) -> None:
    response = password_grant(client, scope="repository:alice/httpd:pull,push repository:x/y:pull")
    body = response.json
    assert response.status_code == 200
    assert body["access_token"] == body["token"]
    assert isinstance(body["expires_in"], int)
    assert body["issued_at"].endswith("Z")
    assert body["scope"] == "repository:alice/httpd:pull,push"
    assert "refresh_token" not in body
    access = decode(body["access_token"])["access"]
    assert access == [{"type": "repository", "name": "alice/httpd", "actions": ["pull", "push"]},
                      {"type": "repository", "name": "x/y", "actions": []}]


def test_repeated_scope_fields_are_accepted(client: FlaskClient, alice: str,
                                            decode: Decode) -> None:
    response = client.post("/token", data={
        "grant_type": "password", "username": "alice", "password": PASSWORD,
        "service": "registry", "client_id": "containers/image",
        "scope": ["repository:alice/a:pull", "repository:alice/b:push"]})
    assert response.json["scope"] == "repository:alice/a:pull repository:alice/b:push"


def test_docker_login_gets_refresh_token_and_refresh_grant_keeps_it(
        client: FlaskClient, alice: str, decode: Decode) -> None:
    refresh_token = docker_login(client)
    assert refresh_token.startswith("authsvc_rt_")
    response = refresh_grant(client, refresh_token)
    assert response.status_code == 200, response.json
    assert response.json["refresh_token"] == refresh_token
    claims = decode(response.json["access_token"])
    assert claims["sub"] == "alice"
    assert claims["access"][0]["actions"] == ["pull", "push"]
    assert refresh_grant(client, refresh_token).status_code == 200


def test_password_grant_with_offline_access_returns_a_working_refresh_token(
        client: FlaskClient, alice: str) -> None:
    refresh_token = password_grant(client, access_type="offline").json["refresh_token"]
    response = refresh_grant(client, refresh_token, client_id="containerd-client")
    assert response.status_code == 200


def test_anonymous_get_never_gets_a_refresh_token(client: FlaskClient) -> None:
    response = client.get("/token?service=registry&offline_token=true&client_id=docker")
    assert response.status_code == 200
    assert "refresh_token" not in response.json


def test_refresh_token_is_stored_only_as_a_hash(client: FlaskClient, alice: str,
                                                state: Services) -> None:
    refresh_token = docker_login(client)
    rows = db.session.execute(db.select(RefreshToken)).scalars().all()
    assert len(rows) == 1
    assert refresh_token not in (rows[0].secret_hash, rows[0].client_id, rows[0].service)
    assert rows[0].client_id == "docker" and rows[0].last_used_at is None
    refresh_grant(client, refresh_token)
    db.session.expire_all()
    assert db.session.get(RefreshToken, rows[0].id).last_used_at is not None


def revoke_via_cli(state: Services, client: FlaskClient, token: str) -> None:
    (row,) = state.refresh_tokens.list_for("alice")
    state.refresh_tokens.revoke(row.id)


def expire(state: Services, client: FlaskClient, token: str) -> None:
    (row,) = state.refresh_tokens.list_for("alice")
    row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    db.session.commit()


@pytest.mark.parametrize("spoil", [
    pytest.param(lambda s, c, t: s.accounts.set_disabled("alice"), id="user disabled"),
    pytest.param(lambda s, c, t: s.accounts.set_password("alice", "new password"),
                 id="password changed"),
    pytest.param(revoke_via_cli, id="revoked"),
    pytest.param(expire, id="expired"),
])
def test_refresh_token_dies_with_its_reasons(client: FlaskClient, alice: str, state: Services,
                                             spoil: Callable[..., None]) -> None:
    refresh_token = docker_login(client)
    spoil(state, client, refresh_token)
    response = refresh_grant(client, refresh_token)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_grant"


def test_reenabled_user_needs_to_log_in_again(client: FlaskClient, alice: str,
                                              state: Services) -> None:
    refresh_token = docker_login(client)
    state.accounts.set_disabled("alice")
    state.accounts.set_disabled("alice", False)
    assert refresh_grant(client, refresh_token).status_code == 401
    assert refresh_grant(client, docker_login(client)).status_code == 200


@pytest.mark.parametrize(("change", "status", "error"), [
    ({"service": "other"}, 400, "invalid_request"),
    ({"client_id": "someone-else"}, 401, "invalid_grant"),
    ({"refresh_token": "authsvc_rt_forged"}, 401, "invalid_grant"),
    ({"refresh_token": ""}, 400, "invalid_request"),
    ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
    ({"grant_type": ""}, 400, "invalid_request"),
    ({"client_id": ""}, 400, "invalid_request"),
    ({"service": ""}, 400, "invalid_request"),
    ({"scope": "repository:Bad:pull"}, 400, "invalid_scope"),
])
def test_refresh_grant_errors(client: FlaskClient, alice: str, change: dict[str, str],
                              status: int, error: str) -> None:
    refresh_token = docker_login(client)
    response = refresh_grant(client, refresh_token, **change)
    assert response.status_code == status
    assert response.json["error"] == error
    assert response.json["error_description"]


def test_refresh_token_for_another_service_is_refused(client: FlaskClient, alice: str,
                                                      app: Any) -> None:
    app.config["SERVICES"].append("registry-b")
    refresh_token = docker_login(client)
    response = refresh_grant(client, refresh_token, service="registry-b")
    assert response.status_code == 401
    assert response.json["error"] == "invalid_grant"


@pytest.mark.parametrize(("form", "status", "error"), [
    ({"password": "wrong password"}, 401, "invalid_grant"),
    ({"username": "nobody"}, 401, "invalid_grant"),
    ({"username": ""}, 400, "invalid_request"),
    ({"password": ""}, 400, "invalid_request"),
])
def test_password_grant_errors(client: FlaskClient, alice: str, form: dict[str, str],
                               status: int, error: str) -> None:
    response = password_grant(client, **form)
    assert response.status_code == status
    assert response.json["error"] == error


def test_disabled_user_password_grant_is_401(client: FlaskClient, make_user: Any) -> None:
    make_user("alice", disabled=True)
    response = password_grant(client)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_grant"


def test_non_form_body_is_a_clear_400(client: FlaskClient) -> None:
    response = client.post("/token", data=b"\xff\xfe garbage", content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


def test_a_form_over_the_size_limit_is_413_in_oauth_form(client: FlaskClient) -> None:
    body = "grant_type=password&password=" + "x" * 70_000
    response = client.post("/token", data=body,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert response.json["error"] == "invalid_request"

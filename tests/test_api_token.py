"""GET /token as clients and the registry see it (PROTOCOL §1.2–1.3)."""

import base64
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from authsvc.db.services import Services
from tests.conftest import PASSWORD
from tests.token_helpers import Decode, access_of, get_token


def test_owner_gets_pull_and_push_in_own_namespace(client: FlaskClient, make_user: Any,
                                                   decode: Decode) -> None:
    make_user("alice")
    response = get_token(client, "repository:alice/httpd:pull,push", auth=("alice", PASSWORD))
    assert access_of(decode, response) == {"repository:alice/httpd": ["pull", "push"]}


def test_response_fields_follow_the_protocol(client: FlaskClient, make_user: Any,
                                             decode: Decode) -> None:
    make_user("alice")
    body = get_token(client, "repository:alice/httpd:pull", auth=("alice", PASSWORD)).json
    assert body["token"] == body["access_token"]
    assert isinstance(body["expires_in"], int) and body["expires_in"] == 900
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["issued_at"])
    claims = decode(body["token"])
    assert claims["sub"] == "alice"
    assert claims["aud"] == "registry"
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert "refresh_token" not in body


def test_stranger_gets_an_empty_grant_not_an_error(client: FlaskClient, make_user: Any,
                                                   decode: Decode) -> None:
    make_user("alice")
    make_user("bob")
    response = get_token(client, "repository:alice/httpd:pull,push", auth=("bob", PASSWORD))
    assert access_of(decode, response) == {"repository:alice/httpd": []}


def test_anonymous_pull_of_public_repository_only(client: FlaskClient, state: Services,
                                                  decode: Decode) -> None:
    state.repos.create("alice/web", "public")
    response = get_token(client, "repository:alice/web:pull,push", "repository:alice/secret:pull")
    assert access_of(decode, response) == {"repository:alice/web": ["pull"],
                                           "repository:alice/secret": []}
    assert decode(response.json["token"])["sub"] == ""


def test_login_without_scope_gets_empty_access(client: FlaskClient, make_user: Any,
                                               decode: Decode) -> None:
    make_user("alice")
    response = client.get("/token?account=alice&client_id=docker&offline_token=true"
                          "&service=registry", auth=("alice", PASSWORD))
    assert response.status_code == 200
    assert decode(response.json["token"])["access"] == []


def test_subject_comes_from_credentials_not_account(client: FlaskClient, make_user: Any,
                                                    decode: Decode) -> None:
    make_user("alice")
    make_user("bob")
    response = get_token(client, "repository:alice/httpd:push", auth=("bob", PASSWORD),
                         account="alice")
    assert decode(response.json["token"])["sub"] == "bob"
    assert access_of(decode, response) == {"repository:alice/httpd": []}


@pytest.mark.parametrize("auth", [("alice", "wrong password"), ("nobody", PASSWORD),
                                  ("", PASSWORD), ("disabled", PASSWORD)])
def test_bad_credentials_are_401_json_with_basic_challenge(client: FlaskClient, make_user: Any,
                                                           auth: tuple[str, str]) -> None:
    make_user("alice")
    make_user("disabled", disabled=True)
    response = get_token(client, "repository:alice/httpd:pull", auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert response.json == {"errors": [{"code": "UNAUTHORIZED",
                                         "message": "incorrect username or password"}]}


@pytest.mark.parametrize("header", ["Bearer abc", "Basic !!!notbase64", "Basic " +
                                    base64.b64encode(b"no-colon").decode(), "Digest x"])
def test_malformed_authorization_header_is_401(client: FlaskClient, header: str) -> None:
    response = client.get("/token?service=registry", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json["errors"][0]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(("query", "code"), [
    ("scope=repository:a/b:pull", "INVALID_REQUEST"),
    ("service=other&scope=repository:a/b:pull", "INVALID_REQUEST"),
    ("service=registry&scope=repository:A/b:pull", "INVALID_SCOPE"),
    ("service=registry&scope=nonsense", "INVALID_SCOPE"),
    ("service=registry&scope=repository:a/b:PULL", "INVALID_SCOPE"),
])
def test_bad_parameters_are_400_in_registry_error_format(client: FlaskClient, query: str,
                                                         code: str) -> None:
    response = client.get(f"/token?{query}")
    assert response.status_code == 400
    assert response.json["errors"][0]["code"] == code
    assert response.json["errors"][0]["message"]


def test_space_separated_and_repeated_scopes(client: FlaskClient, make_user: Any,
                                             decode: Decode) -> None:
    make_user("alice")
    response = get_token(client, "repository:alice/a:pull repository:alice/b:push",
                         "repository:alice/a:push", auth=("alice", PASSWORD))
    assert access_of(decode, response) == {"repository:alice/a": ["pull", "push"],
                                           "repository:alice/b": ["push"]}


def test_host_port_in_scope_name_is_echoed_and_granted_nothing(
        client: FlaskClient, make_user: Any, decode: Decode) -> None:
    """The registry never strips a host from a name: ``myreg:5000/alice/httpd`` is no
    repository it can hold, and alice's namespace is ``alice/``, not ``myreg:5000/``."""
    make_user("alice")
    response = get_token(client, "repository:myreg:5000/alice/httpd:pull",
                         auth=("alice", PASSWORD))
    assert access_of(decode, response) == {"repository:myreg:5000/alice/httpd": []}


@pytest.mark.parametrize(("who", "requested", "granted"), [
    (("root", PASSWORD), "*", ["*"]),
    (("root", PASSWORD), "search", ["search"]),
    (("root", PASSWORD), "*,search", ["*", "search"]),
    (("alice", PASSWORD), "*", []),
    (("alice", PASSWORD), "search", ["search"]),
    (("alice", PASSWORD), "*,search", ["search"]),
    (None, "search", []),
    (None, "*,search", []),
])
def test_catalog_search_for_users_and_all_of_it_for_admins(
        client: FlaskClient, make_user: Any, decode: Decode, who: tuple[str, str] | None,
        requested: str, granted: list[str]) -> None:
    """Docker asks for ``registry:catalog:search`` before ``/v1/search``: every user gets it;
    ``*`` (the registry's unfiltered ``/v2/_catalog``) stays the admins'."""
    make_user("root", admin=True)
    make_user("alice")
    response = get_token(client, f"registry:catalog:{requested}", auth=who)
    assert access_of(decode, response) == {"registry:catalog": granted}


def test_grant_and_revoke_take_effect_on_next_request(client: FlaskClient, state: Services,
                                                      make_user: Any, decode: Decode) -> None:
    make_user("alice")
    make_user("bob")
    state.grants.grant("bob", "alice/*", "pull")
    before = get_token(client, "repository:alice/httpd:pull,push", auth=("bob", PASSWORD))
    state.grants.revoke("bob", "alice/*")
    after = get_token(client, "repository:alice/httpd:pull,push", auth=("bob", PASSWORD))
    assert access_of(decode, before) == {"repository:alice/httpd": ["pull"]}
    assert access_of(decode, after) == {"repository:alice/httpd": []}


def test_owner_push_registers_repository_private_by_default(client: FlaskClient, state: Services,
                                                            make_user: Any) -> None:
    make_user("alice")
    get_token(client, "repository:alice/httpd:pull,push", auth=("alice", PASSWORD))
    get_token(client, "repository:alice/other:pull", auth=("alice", PASSWORD))
    repos = {r.name: r.visibility for r in state.repos.search()[0]}
    assert repos == {"alice/httpd": "private"}


def test_token_is_never_more_than_requested(client: FlaskClient, make_user: Any,
                                            decode: Decode) -> None:
    make_user("root", admin=True)
    response = get_token(client, "repository:alice/httpd:pull", auth=("root", PASSWORD))
    assert access_of(decode, response) == {"repository:alice/httpd": ["pull"]}


def test_unknown_path_is_json_404(client: FlaskClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json["errors"][0]["code"] == "NOT_FOUND"


def test_oversized_body_is_413_in_oauth_error_format(client: FlaskClient) -> None:
    response = client.post("/token", data={"grant_type": "password", "scope": "x" * 70000})
    assert response.status_code == 413
    assert response.json["error"] == "invalid_request"


def test_too_many_scopes_is_400(client: FlaskClient) -> None:
    scopes = [f"repository:alice/r{i}:pull" for i in range(65)]
    response = get_token(client, *scopes)
    assert response.status_code == 400
    assert "too many scopes" in response.json["errors"][0]["message"]


def test_token_answers_are_never_cached_and_are_https_only(client: FlaskClient,
                                                           make_user: Any) -> None:
    """RFC 6749 §5.1: a token response carries ``Cache-Control: no-store``."""
    make_user("alice")
    for response in (get_token(client, "repository:alice/httpd:pull", auth=("alice", PASSWORD)),
                     get_token(client, "repository:alice/httpd:pull")):
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        assert response.headers["Content-Type"] == "application/json"
        assert int(response.headers["Content-Length"]) == len(response.data)


def test_other_methods_are_405_with_allow_and_issue_nothing(client: FlaskClient,
                                                           state: Services) -> None:
    before = state.audit.search(action="token.")[1]
    for method in ("PUT", "DELETE", "PATCH"):
        response = client.open("/token?service=registry", method=method)
        assert response.status_code == 405
        assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}
        assert response.json["errors"][0]["code"] == "METHOD_NOT_ALLOWED"
    options = client.options("/token")
    assert options.status_code == 200 and "POST" in options.headers["Allow"]
    assert state.audit.search(action="token.")[1] == before


def test_head_answers_like_get_without_a_body(client: FlaskClient) -> None:
    response = client.head("/token?service=registry&scope=repository:library/x:pull")
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["Cache-Control"] == "no-store"


def test_head_never_issues_a_refresh_token(client: FlaskClient, make_user: Any,
                                           state: Services) -> None:
    """A HEAD answer has no body: a refresh token made for it would be seen by nobody."""
    make_user("alice")
    response = client.head("/token?service=registry&client_id=docker&offline_token=true",
                           auth=("alice", PASSWORD))
    assert response.status_code == 200 and response.data == b""
    assert state.refresh_tokens.list_for("alice") == []
    response = client.get("/token?service=registry&client_id=docker&offline_token=true",
                          auth=("alice", PASSWORD))
    assert "refresh_token" in response.json
    assert len(state.refresh_tokens.list_for("alice")) == 1

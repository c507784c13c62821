"""``GET /v1/search`` (``docker search``): Docker Hub's answer, holding exactly what the caller
may pull, for every way Docker sends credentials; no credentials at all (podman's request) is
401, so that podman falls back to ``/v2/_catalog`` (tests/test_v2_catalog.py)."""

import base64
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from flask import Flask
from flask.testing import FlaskClient

from authsvc.core.scopes import Scope
from authsvc.core.tokens import TokenIssuer
from authsvc.db.services import services_of
from authsvc.pki.certs import CertPaths, cert_pem, generate_key, make_signing_cert
from authsvc.pki.signing_keys import SigningKey, load_signing_key
from tests.api_helpers import ALICE, BOB, ROOT, call, error_of, new_token
from tests.conftest import PASSWORD
from tests.token_helpers import basic, get_token

EMPTY_BASIC = "Basic Og=="  # what Docker sends when logged out: empty user and password
REPOSITORIES = {"alice/private1": "private", "alice/public1": "public", "bob/tool": "private",
                "httpd": "private", "alice/extra": "private"}


@pytest.fixture
def world(app: Flask, make_user: Any) -> None:
    make_user("root", admin=True)
    make_user("alice")
    make_user("bob")
    with app.app_context():
        for name, visibility in REPOSITORIES.items():
            services_of(app).repos.create(name, visibility)


def failed_logins(app: Flask) -> list[str]:
    """The details of the ``login.failed`` events in the audit trail, oldest first."""
    with app.app_context():
        rows, _ = services_of(app).audit.search(action="login.failed")
        return [row.detail for row in reversed(rows)]


def search(client: FlaskClient, authorization: str | None = None, **query: Any) -> Any:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return client.get("/v1/search", query_string=query, headers=headers)


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [result["name"] for result in response.json["results"]]


def jwt_for(client: FlaskClient, who: tuple[str, str] | None,
            scope: str = "registry:catalog:search") -> str:
    """The token Docker's identity-token flow gets from the realm before searching."""
    response = get_token(client, scope, auth=who)
    assert response.status_code == 200, response.json
    return str(response.json["token"])


def test_docker_hub_format(client: FlaskClient, world: None) -> None:
    response = search(client, basic("root"), q="alice/public", n="25")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.json == {
        "num_results": 1, "query": "alice/public", "page": 1, "num_pages": 1, "page_size": 25,
        "results": [{"name": "alice/public1", "description": "", "star_count": 0,
                     "is_official": False, "is_automated": False}]}


def test_single_component_names_are_official(client: FlaskClient, world: None) -> None:
    (httpd,) = search(client, basic("root"), q="httpd").json["results"]
    assert httpd["name"] == "httpd" and httpd["is_official"] is True


@pytest.mark.parametrize(("authorization", "expected"), [
    pytest.param(EMPTY_BASIC, ["alice/public1"], id="Basic Og=="),
    pytest.param(basic("bob"), ["alice/public1"], id="bob"),
    pytest.param(basic("alice"), ["alice/extra", "alice/private1", "alice/public1"], id="alice"),
    pytest.param(basic("root"), ["alice/extra", "alice/private1", "alice/public1"], id="admin"),
])
def test_results_are_what_the_caller_may_pull(client: FlaskClient, world: None,
                                              authorization: str | None,
                                              expected: list[str]) -> None:
    assert names(search(client, authorization, q="alice")) == expected


@pytest.mark.parametrize(("who", "expected"), [
    (None, ["alice/public1"]),
    (BOB, ["alice/public1", "bob/tool"]),
    (ALICE, ["alice/extra", "alice/private1", "alice/public1"]),
    (ROOT, sorted(REPOSITORIES)),
])
def test_the_same_list_as_the_api(client: FlaskClient, world: None,
                                  who: tuple[str, str] | None, expected: list[str]) -> None:
    authorization = basic(*who) if who else EMPTY_BASIC
    assert names(search(client, authorization, q="")) == expected
    if who is not None:
        listed = call(client, "GET", "/repositories", who).json["items"]
        assert [item["name"] for item in listed] == expected


def test_bob_never_sees_alices_private_repository(client: FlaskClient, world: None,
                                                  app: Flask) -> None:
    with app.app_context():
        services_of(app).grants.grant("bob", "alice/extra", "push")  # push is no pull
    for query in ("", "alice", "private", "alice/private1"):
        for authorization in (basic("bob"), f"Bearer {jwt_for(client, BOB)}"):
            found = names(search(client, authorization, q=query))
            assert "alice/private1" not in found and "alice/extra" not in found


def test_a_pull_grant_shows_the_repository(client: FlaskClient, world: None, app: Flask) -> None:
    with app.app_context():
        services_of(app).grants.grant("bob", "alice/private1", "pull")
    assert names(search(client, basic("bob"), q="alice")) == ["alice/private1", "alice/public1"]


def test_empty_basic_is_anonymous_not_a_failed_login(app: Flask, client: FlaskClient,
                                                     world: None) -> None:
    for _ in range(3):
        assert names(search(client, EMPTY_BASIC, q="alice")) == ["alice/public1"]
    assert failed_logins(app) == []


@pytest.mark.app_config(LOCKOUT_ATTEMPTS=2)
def test_wrong_passwords_are_401_counted_and_audited(app: Flask, client: FlaskClient,
                                                     world: None) -> None:
    for _ in range(2):
        error_of(search(client, basic("alice", "wrong password"), q="alice"), 401,
                 "UNAUTHORIZED")
    assert len(failed_logins(app)) == 2
    error_of(search(client, basic("alice"), q="alice"), 429, "TOOMANYREQUESTS")


@pytest.mark.parametrize("authorization", [
    basic("nobody"), basic("alice", ""), "Basic !!!", "Basic " + base64.b64encode(b":x").decode(),
    "Bearer ", "Bearer authsvc_pat_wrong", "Digest x", "Bearer not-a-jwt",
])
def test_wrong_credentials_are_401(client: FlaskClient, world: None, authorization: str) -> None:
    response = search(client, authorization, q="alice")
    error_of(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


@pytest.mark.parametrize("via", ["basic", "bearer"])
def test_an_access_tokens_limit_applies(client: FlaskClient, world: None, via: str) -> None:
    token = new_token(client, "alice", permission="read", repositories=["alice/private1"])
    authorization = basic("alice", token) if via == "basic" else f"Bearer {token}"
    assert names(search(client, authorization, q="")) == ["alice/private1"]


def test_paging(client: FlaskClient, world: None) -> None:
    pages = [search(client, basic("root"), q="", n="2", page=str(page)).json
             for page in (1, 2, 3, 4)]
    assert [page["num_results"] for page in pages] == [5] * 4
    assert [page["num_pages"] for page in pages] == [3] * 4
    assert [page["page"] for page in pages] == [1, 2, 3, 4]
    assert [page["page_size"] for page in pages] == [2] * 4
    assert [[r["name"] for r in page["results"]] for page in pages] == [
        ["alice/extra", "alice/private1"], ["alice/public1", "bob/tool"], ["httpd"], []]


def test_defaults_and_no_results(client: FlaskClient, world: None) -> None:
    answer = search(client, EMPTY_BASIC, q="nothing-like-it").json
    assert (answer["page"], answer["page_size"], answer["num_results"], answer["num_pages"],
            answer["results"]) == (1, 25, 0, 0, [])
    assert search(client, EMPTY_BASIC).json["query"] == ""


@pytest.mark.parametrize("query", [
    {"n": "0"}, {"n": "101"}, {"n": "-1"}, {"n": "ten"}, {"n": ""}, {"n": "1.5"},
    {"n": "\u0663"}, {"page": "0"}, {"page": "x"}, {"page": "1000001"},
    {"page": "99999999999999999999999"}, {"q": "a" * 256},
])
def test_bad_parameters_are_400(client: FlaskClient, world: None, query: dict[str, str]) -> None:
    error_of(search(client, basic("alice"), **query), 400, "INVALID_REQUEST")


def test_the_longest_query_and_page_size(client: FlaskClient, world: None) -> None:
    assert names(search(client, EMPTY_BASIC, q="a" * 255, n="100")) == []
    assert search(client, EMPTY_BASIC, n="1", page="1000000").json["results"] == []


def test_no_authorization_header_is_401_so_podman_falls_back(app: Flask, client: FlaskClient,
                                                             world: None) -> None:
    """podman 4.3 sends none whatever it has stored, and lists ``/v2/_catalog`` with its
    credentials only when ``/v1/search`` answers anything but 200; no login failed."""
    response = search(client, q="alice")
    message = error_of(response, 401, "UNAUTHORIZED")
    assert "send credentials" in message and "Basic Og==" in message
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert failed_logins(app) == []


def test_descriptions_are_shown(client: FlaskClient, world: None, app: Flask) -> None:
    with app.app_context():
        services_of(app).repos.set_description("alice/public1", "the public one")
    (result,) = search(client, EMPTY_BASIC, q="alice/public1").json["results"]
    assert result["description"] == "the public one"


# -- Bearer: Docker's identity-token flow ----------------------------------------------------

@pytest.mark.parametrize(("who", "expected"), [
    (ALICE, ["alice/extra", "alice/private1", "alice/public1"]),
    (BOB, ["alice/public1"]),
    (ROOT, ["alice/extra", "alice/private1", "alice/public1"]),
])
def test_a_search_token_from_the_realm(client: FlaskClient, world: None,
                                       who: tuple[str, str], expected: list[str]) -> None:
    token = jwt_for(client, who)
    assert names(search(client, f"Bearer {token}", q="alice")) == expected


def test_a_token_minted_for_an_access_token_lists_only_what_it_reaches(
        client: FlaskClient, world: None, decode: Any) -> None:
    """The realm records the access token's limit in the JWT, and the search applies it."""
    pat = new_token(client, "alice", permission="read", repositories=["alice/private1"])
    token = jwt_for(client, ("alice", pat))
    assert decode(token)["authsvc_limit"] == {"actions": ["pull"],
                                              "targets": ["alice/private1"]}
    assert names(search(client, f"Bearer {token}", q="")) == ["alice/private1"]


def test_password_and_access_token_logins_never_share_a_cached_token(
        client: FlaskClient, world: None, app: Flask, decode: Any) -> None:
    """Same user, same scope, same grants, within TOKEN_CACHE_SECONDS: two tokens."""
    assert app.config["TOKEN_CACHE_SECONDS"] > 0
    pat = new_token(client, "alice", permission="read", repositories=["alice/public1"])
    by_password, by_pat = jwt_for(client, ALICE), jwt_for(client, ("alice", pat))
    assert by_password != by_pat and jwt_for(client, ALICE) == by_password
    assert "authsvc_limit" not in decode(by_password)
    assert names(search(client, f"Bearer {by_password}", q="")) == [
        "alice/extra", "alice/private1", "alice/public1"]
    assert names(search(client, f"Bearer {by_pat}", q="")) == ["alice/public1"]


def test_a_whole_catalog_token_searches_too(client: FlaskClient, world: None) -> None:
    token = jwt_for(client, ROOT, "registry:catalog:*")
    assert names(search(client, f"Bearer {token}", q="")) == sorted(REPOSITORIES)


def test_a_token_without_search_is_403(client: FlaskClient, world: None) -> None:
    token = jwt_for(client, ALICE, "repository:alice/private1:pull")
    error_of(search(client, f"Bearer {token}", q="alice"), 403, "DENIED")


def test_an_anonymous_token_is_401(client: FlaskClient, world: None) -> None:
    token = jwt_for(client, None)
    error_of(search(client, f"Bearer {token}", q="alice"), 401, "UNAUTHORIZED")


def test_a_token_of_a_disabled_or_deleted_user_is_401(app: Flask, client: FlaskClient,
                                                      world: None) -> None:
    token = jwt_for(client, ALICE)
    call(client, "PATCH", "/users/alice", ROOT, json={"disabled": True})
    error_of(search(client, f"Bearer {token}", q="alice"), 401, "UNAUTHORIZED")
    call(client, "PATCH", "/users/alice", ROOT, json={"disabled": False})
    assert names(search(client, f"Bearer {token}", q="alice"))
    call(client, "DELETE", "/users/alice", ROOT)
    error_of(search(client, f"Bearer {token}", q="alice"), 401, "UNAUTHORIZED")


def test_a_token_of_a_demoted_admin_sees_what_the_user_may_pull_now(
        client: FlaskClient, world: None) -> None:
    token = jwt_for(client, ROOT)
    call(client, "POST", "/users", ROOT, json={"username": "boss", "password": PASSWORD,
                                                 "admin": True})
    call(client, "PATCH", "/users/root", ("boss", PASSWORD), json={"admin": False})
    assert names(search(client, f"Bearer {token}", q="alice")) == ["alice/public1"]


def _signing_key(certs_dir: Path | None) -> SigningKey:
    """authsvc's own signing key (``certs_dir``), or a stranger's (None)."""
    if certs_dir is not None:
        paths = CertPaths(certs_dir)
        return load_signing_key(paths.signing_key.read_bytes(), paths.signing.read_bytes())
    key = generate_key("ec")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return load_signing_key(pem, cert_pem(make_signing_cert(key, datetime.now(UTC))))


@pytest.mark.parametrize(("own_key", "issued_ago", "audience", "issuer"), [
    (True, 3600, "registry", "authsvc"),
    (False, 0, "registry", "authsvc"),
    (True, 0, "elsewhere", "authsvc"),
    (True, 0, "registry", "someone"),
], ids=["expired", "forged", "other-audience", "other-issuer"])
def test_bad_bearer_tokens_are_401_and_audited(
        app: Flask, client: FlaskClient, world: None, certs_dir: Path, own_key: bool,
        issued_ago: int, audience: str, issuer: str) -> None:
    key = _signing_key(certs_dir if own_key else None)
    minted = TokenIssuer(key, issuer, 900, clock=lambda: time.time() - issued_ago).issue(
        "alice", audience, [(Scope("registry", "catalog", frozenset({"search"})),
                             frozenset({"search"}))])
    error_of(search(client, f"Bearer {minted.token}", q="alice"), 401, "UNAUTHORIZED")
    (failed,) = failed_logins(app)
    assert failed.startswith("search bearer token: invalid bearer token")
    assert minted.token not in failed


def test_ping_is_404(client: FlaskClient) -> None:
    error_of(client.get("/v1/_ping"), 404)

"""``GET /v2/_catalog`` behind nginx (``authsvc.web.api.v2_catalog``): the registry's answer and
challenge, holding the tagged repositories the token's subject may pull, for podman's search."""

import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.core.scopes import Scope
from authsvc.core.tokens import TokenIssuer
from authsvc.db.services import services_of
from tests.api_helpers import ALICE, BOB, ROOT, call, error_of, new_token
from tests.conftest import PASSWORD
from tests.test_docker_search import _signing_key, failed_logins
from tests.token_helpers import basic, get_token

DIGEST = "sha256:" + "ab" * 32
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
#: name → (visibility, tagged)
REPOSITORIES = {"alice/private1": ("private", True), "alice/public1": ("public", True),
                "bob/tool": ("private", True), "httpd": ("private", True),
                "alice/extra": ("private", False), "alice/public-empty": ("public", False),
                "bob/public2": ("public", True)}
TAGGED = sorted(name for name, (_, tagged) in REPOSITORIES.items() if tagged)
CHALLENGE = ('Bearer realm="https://localhost:5001/token",service="registry",'
             'scope="registry:catalog:*"')


@pytest.fixture
def world(app: Flask, make_user: Any) -> None:
    make_user("root", admin=True)
    make_user("alice")
    make_user("bob")
    with app.app_context():
        services = services_of(app)
        for name, (visibility, tagged) in REPOSITORIES.items():
            services.repos.create(name, visibility)
            if tagged:
                services.catalog.put_tag(name, "v1", DIGEST, MANIFEST, 100)


def catalog(client: FlaskClient, token: str | None = None, authorization: str | None = None,
            **query: str) -> Any:
    headers = {"Authorization": authorization or f"Bearer {token}"} if (
        token or authorization) else {}
    return client.get("/v2/_catalog", query_string=query, headers=headers)


def listed(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert set(response.json) == {"repositories"}
    return list(response.json["repositories"])


def catalog_token(client: FlaskClient, who: tuple[str, str] | None,
                  scope: str = "registry:catalog:*") -> str:
    """The token podman gets from the realm before listing the catalog."""
    response = get_token(client, scope, auth=who)
    assert response.status_code == 200, response.json
    return str(response.json["token"])


def challenged(response: Any, error: str | None = None) -> str:
    """Assert the registry's 401 and challenge for the catalog; return the message."""
    message = error_of(response, 401, "UNAUTHORIZED")
    expected = CHALLENGE + (f',error="{error}"' if error else "")
    assert response.headers["WWW-Authenticate"] == expected
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    return message


@pytest.mark.parametrize("authorization", [
    None, basic("alice"), "Basic Og==", "Bearer ", "Digest x", "Basic !!!"])
def test_without_a_bearer_token_the_registrys_challenge(
        app: Flask, client: FlaskClient, world: None, authorization: str | None) -> None:
    assert challenged(catalog(client, authorization=authorization)) == "authentication required"
    assert failed_logins(app) == []


@pytest.mark.parametrize(("who", "expected"), [
    (None, ["alice/public1", "bob/public2"]),
    (BOB, ["alice/public1", "bob/public2", "bob/tool"]),
    (ALICE, ["alice/private1", "alice/public1", "bob/public2"]),
    (ROOT, TAGGED),
])
def test_the_tagged_repositories_the_subject_may_pull(
        client: FlaskClient, world: None, who: tuple[str, str] | None,
        expected: list[str]) -> None:
    """Untagged ones (alice/extra, alice/public-empty) are never listed: the registry holds
    nothing of them."""
    assert listed(catalog(client, catalog_token(client, who))) == expected


def test_bob_never_sees_alices_private_repositories(client: FlaskClient, world: None,
                                                    app: Flask) -> None:
    with app.app_context():
        services_of(app).grants.grant("bob", "alice/private1", "push")  # push is no pull
    for scope in ("registry:catalog:*", "registry:catalog:search", "registry:catalog:"):
        found = listed(catalog(client, catalog_token(client, BOB, scope)))
        assert "alice/private1" not in found and "alice/extra" not in found
    with app.app_context():
        services_of(app).grants.grant("bob", "alice/private1", "pull")
    assert "alice/private1" in listed(catalog(client, catalog_token(client, BOB)))


def test_an_access_tokens_limit_applies(client: FlaskClient, world: None) -> None:
    pat = new_token(client, "alice", permission="read", repositories=["alice/private1"])
    token = catalog_token(client, ("alice", pat))
    assert listed(catalog(client, token)) == ["alice/private1"]
    root_pat = new_token(client, "root", permission="read", repositories=["bob/*"])
    assert listed(catalog(client, catalog_token(client, ("root", root_pat)))) == [
        "bob/public2", "bob/tool"]


@pytest.mark.parametrize("scopes", [(), ("repository:alice/private1:pull",)])
def test_a_token_without_a_catalog_entry_is_401(client: FlaskClient, world: None,
                                                app: Flask, scopes: tuple[str, ...]) -> None:
    """podman 4.3 sends a token for no scope first, and asks for the challenge's scope next:
    a good token without the catalog is no failed login."""
    response = get_token(client, *scopes, auth=ROOT)
    token = response.json["token"]
    assert "registry:catalog" in challenged(catalog(client, token), "insufficient_scope")
    assert failed_logins(app) == []


def test_a_token_of_a_disabled_or_deleted_user_is_401(client: FlaskClient,
                                                      world: None) -> None:
    token = catalog_token(client, ALICE)
    call(client, "PATCH", "/users/alice", ROOT, json={"disabled": True})
    challenged(catalog(client, token), "invalid_token")
    call(client, "PATCH", "/users/alice", ROOT, json={"disabled": False})
    assert listed(catalog(client, token))
    call(client, "DELETE", "/users/alice", ROOT)
    challenged(catalog(client, token), "invalid_token")


def test_a_demoted_admin_sees_what_the_user_may_pull_now(client: FlaskClient,
                                                         world: None, make_user: Any) -> None:
    token = catalog_token(client, ROOT)
    make_user("boss", admin=True)
    call(client, "PATCH", "/users/root", ("boss", PASSWORD),
         json={"admin": False})
    assert listed(catalog(client, token)) == ["alice/public1", "bob/public2"]


@pytest.mark.parametrize(("own_key", "issued_ago", "audience", "issuer"), [
    (True, 3600, "registry", "authsvc"),
    (False, 0, "registry", "authsvc"),
    (True, 0, "elsewhere", "authsvc"),
    (True, 0, "registry", "someone"),
], ids=["expired", "foreign", "other-audience", "other-issuer"])
def test_bad_tokens_are_401_and_audited(
        app: Flask, client: FlaskClient, world: None, certs_dir: Path, own_key: bool,
        issued_ago: int, audience: str, issuer: str) -> None:
    key = _signing_key(certs_dir if own_key else None)
    catalog_scope = Scope("registry", "catalog", frozenset({"*"}))
    minted = TokenIssuer(key, issuer, 900, clock=lambda: time.time() - issued_ago).issue(
        "root", audience, [(catalog_scope, frozenset({"*"}))])
    assert challenged(catalog(client, minted.token), "invalid_token").startswith(
        "invalid bearer token")
    (failed,) = failed_logins(app)
    assert failed.startswith("catalog bearer token: invalid bearer token")
    assert minted.token not in failed


@pytest.mark.parametrize("token", ["not-a-jwt", "authsvc_pat_wrong", "a.b.c"])
def test_garbage_bearer_tokens_are_401(client: FlaskClient, world: None, token: str) -> None:
    challenged(catalog(client, token), "invalid_token")


def test_pagination_with_link(client: FlaskClient, world: None) -> None:
    """The registry's Link: the path, ``last`` and ``n``, URL-encoded; none on the last page."""
    token = catalog_token(client, ROOT)
    seen: list[str] = []
    query = {"n": "2"}
    links = []
    while True:
        response = catalog(client, token, **query)
        page = listed(response)
        assert len(page) <= 2
        seen += page
        link = response.headers.get("Link")
        if link is None:
            break
        links.append(link)
        target, rel = link.split("; ")
        assert rel == 'rel="next"' and target.startswith("<") and target.endswith(">")
        url = urlsplit(target[1:-1])
        assert url.path == "/v2/_catalog"
        query = {key: value for key, (value,) in parse_qs(url.query).items()}
    assert seen == TAGGED
    assert links[0] == '</v2/_catalog?last=alice%2Fpublic1&n=2>; rel="next"'
    assert len(links) == 2  # 5 names: 2 + 2 + 1
    assert listed(catalog(client, token, n="5")) == TAGGED
    assert "Link" not in catalog(client, token, n="5").headers
    assert catalog(client, token, n="4").headers["Link"] == (
        '</v2/_catalog?last=bob%2Ftool&n=4>; rel="next"')


def test_last_and_the_default_page_size(client: FlaskClient, world: None, app: Flask) -> None:
    token = catalog_token(client, ROOT)
    assert listed(catalog(client, token, last="alice/public1")) == [
        "bob/public2", "bob/tool", "httpd"]
    assert listed(catalog(client, token, last="zzz")) == []
    assert listed(catalog(client, token, last="")) == TAGGED
    with app.app_context():
        for index in range(105):
            services_of(app).catalog.put_tag(f"root/r{index:03}", "v1", DIGEST, MANIFEST, 1)
    response = catalog(client, token)
    assert len(listed(response)) == 100
    assert response.headers["Link"] == '</v2/_catalog?last=root%2Fr094&n=100>; rel="next"'
    assert len(listed(catalog(client, token, n="1000"))) == 110


@pytest.mark.parametrize("n", ["0", "1001", "-1", "ten", "", "1.5", "\u0663"])
def test_a_bad_n_is_the_registrys_400(client: FlaskClient, world: None, n: str) -> None:
    response = catalog(client, catalog_token(client, ROOT), n=n)
    error_of(response, 400, "PAGINATION_NUMBER_INVALID")
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"

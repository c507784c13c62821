"""The ``/api/v1`` repository, visibility and grant routes (issue: admin and self-service API).

Owners manage their namespace, admins everything, others get 403 (or 404 where a 403 would
reveal a private repository). Every refused request is followed by a check that the database
is exactly as before.
"""

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.db.services import Services, services_of
from tests.api_helpers import ALICE, BOB, ROOT, Who, call, error_of, new_token, snapshot
from tests.conftest import PASSWORD
from tests.token_helpers import Decode


def pull_push(client: FlaskClient, decode: Decode, repo: str, who: Who) -> list[str]:
    """The actions ``/token`` grants ``who`` on ``repo`` when asked for pull and push."""
    response: Any = client.get("/token", query_string={
        "service": "registry", "scope": f"repository:{repo}:pull,push"}, auth=who)
    assert response.status_code == 200, response.json
    (access,) = decode(response.json["token"])["access"]
    return list(access["actions"])


def token_for(client: FlaskClient, who: Who) -> Who:
    """``read``, ``write``, ``delete``: a token of alice's with that permission; ``admin
    token``: a delete token of root's; anything else as it is."""
    if who in ("read", "write", "delete"):
        return new_token(client, "alice", permission=who)
    if who == "admin token":
        return new_token(client, "root", permission="delete")
    return who


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.json
    return [r["name"] for r in response.json["items"]]


@pytest.fixture
def people(make_user: Any) -> None:
    make_user("root", admin=True)
    make_user("alice")
    make_user("bob")


@pytest.fixture
def httpd(app: Flask, people: None) -> str:
    """alice/httpd, private, with bob holding pull on it."""
    with app.app_context():
        s: Services = services_of(app)
        s.repos.create("alice/httpd", "private")
        s.grants.grant("bob", "alice/httpd", "pull")
    return "alice/httpd"


# -- POST /repositories ----------------------------------------------------------------------

@pytest.mark.parametrize(("who", "body", "visibility"), [
    pytest.param(ALICE, {"name": "alice/httpd"}, "private", id="own, default private"),
    pytest.param(ALICE, {"name": "alice/web", "visibility": "public"}, "public", id="public"),
    pytest.param(ALICE, {"name": "alice/tools/build"}, "private", id="nested"),
    pytest.param(ROOT, {"name": "bob/web"}, "private", id="admin, anywhere"),
    pytest.param(ROOT, {"name": "httpd"}, "private", id="admin, top level"),
])
def test_create_repository(client: FlaskClient, people: None, who: Who,
                           body: dict[str, Any], visibility: str) -> None:
    response = call(client, "POST", "/repositories", who, json=body)
    assert response.status_code == 201
    assert (response.json["name"], response.json["visibility"]) == (body["name"], visibility)
    assert response.json["created_at"].endswith("Z")
    assert call(client, "GET", f"/repositories/{body['name']}", ROOT).json == {
        **response.json, "tags": []}


def test_write_token_creates_in_own_namespace(client: FlaskClient, people: None) -> None:
    token = new_token(client, "alice", permission="write")
    response = call(client, "POST", "/repositories", token, json={"name": "alice/ci"})
    assert response.status_code == 201


@pytest.mark.parametrize(("who", "name"), [
    pytest.param(ALICE, "bob/web", id="another namespace"),
    pytest.param(ALICE, "httpd", id="top level"),
    pytest.param(ALICE, "alicex/web", id="namespace with her name as prefix"),
    pytest.param("read", "alice/web", id="read-only token"),
    pytest.param("limited", "alice/web", id="token limited to another repository"),
])
def test_create_repository_refused(app: Flask, client: FlaskClient, people: None, who: Who,
                                   name: str) -> None:
    if who == "read":
        who = new_token(client, "alice", permission="read")
    elif who == "limited":
        who = new_token(client, "alice", permission="write", repositories=["alice/other"])
    before = snapshot(app)
    error_of(call(client, "POST", "/repositories", who, json={"name": name}), 403, "DENIED")
    assert snapshot(app) == before


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"name": "Alice/web"}, 422, "NAME_INVALID"),
    ({"name": "alice//web"}, 422, "NAME_INVALID"),
    ({"name": "alice/web/"}, 422, "NAME_INVALID"),
    ({"name": "alice/web:latest"}, 422, "NAME_INVALID"),
    ({"name": ""}, 422, "NAME_INVALID"),
    ({"name": "alice/" + "x" * 300}, 422, "NAME_INVALID"),
    ({"name": 42}, 422, None),
    ({}, 422, None),
    ({"name": "alice/web", "visibility": "secret"}, 422, "INVALID_REQUEST"),
    ({"name": "alice/web", "visibility": True}, 422, None),
    ({"name": "alice/web", "owner": "alice"}, 422, None),
    ({"name": "alice/httpd"}, 409, "CONFLICT"),
    (["alice/web"], 400, "BAD_REQUEST"),
    (None, 400, "BAD_REQUEST"),
])
def test_bad_new_repository_changes_nothing(app: Flask, client: FlaskClient, httpd: str,
                                            body: Any, status: int, code: str | None) -> None:
    before = snapshot(app)
    error_of(call(client, "POST", "/repositories", ALICE, json=body), status, code)
    assert snapshot(app) == before


# -- GET /repositories -----------------------------------------------------------------------

@pytest.fixture
def catalogue(app: Flask, people: None) -> None:
    with app.app_context():
        s: Services = services_of(app)
        for name, visibility in [("alice/httpd", "private"), ("alice/web", "public"),
                                 ("bob/secret", "private"), ("bob/shared", "private"),
                                 ("bob/open", "public"), ("carol/team/a", "private"),
                                 ("carol/team/b", "private"), ("httpd", "private")]:
            s.repos.create(name, visibility)
        s.accounts.create_user("carol", PASSWORD)
        s.grants.grant("alice", "bob/shared", "pull")
        s.grants.grant("alice", "carol/*", "pull")


@pytest.mark.parametrize(("who", "expected"), [
    pytest.param(ROOT, ["alice/httpd", "alice/web", "bob/open", "bob/secret", "bob/shared",
                        "carol/team/a", "carol/team/b", "httpd"], id="admin sees all"),
    pytest.param(ALICE, ["alice/httpd", "alice/web", "bob/open", "bob/shared", "carol/team/a",
                         "carol/team/b"], id="own, public and granted"),
    pytest.param(BOB, ["alice/web", "bob/open", "bob/secret", "bob/shared"], id="bob"),
])
def test_list_shows_what_the_caller_may_pull(client: FlaskClient, catalogue: None, who: Who,
                                             expected: list[str]) -> None:
    response = call(client, "GET", "/repositories", who)
    assert names(response) == expected
    assert response.json["total"] == len(expected)


def test_list_with_a_limited_token_shows_only_what_the_token_may_pull(
        client: FlaskClient, catalogue: None) -> None:
    token = new_token(client, "alice", permission="read", repositories=["alice/httpd"])
    response = call(client, "GET", "/repositories", token)
    assert names(response) == ["alice/httpd"]
    assert response.json["total"] == 1


@pytest.mark.parametrize(("q", "expected"), [
    ("web", ["alice/web"]),
    ("bob/", ["bob/open", "bob/shared"]),
    ("team", ["carol/team/a", "carol/team/b"]),
    ("nothing", []),
    ("%", []),
    ("_", []),
])
def test_search_filters_the_visible_list(client: FlaskClient, catalogue: None, q: str,
                                         expected: list[str]) -> None:
    response = call(client, "GET", "/repositories", ALICE, query_string={"q": q})
    assert names(response) == expected
    assert response.json["total"] == len(expected)


def test_search_treats_like_wildcards_literally(client: FlaskClient, people: None) -> None:
    for name in ("alice/a_b", "alice/axb"):
        call(client, "POST", "/repositories", ALICE, json={"name": name})
    response = call(client, "GET", "/repositories", ALICE, query_string={"q": "a_b"})
    assert names(response) == ["alice/a_b"]


def test_repositories_are_paged_with_the_total(client: FlaskClient, people: None) -> None:
    created = [f"alice/r{i:02}" for i in range(25)]
    for name in created:
        assert call(client, "POST", "/repositories", ALICE, json={"name": name}).status_code == 201
    pages = [call(client, "GET", "/repositories", ALICE,
                  query_string={"page": p, "per_page": 10}).json for p in (1, 2, 3)]
    assert [len(p["items"]) for p in pages] == [10, 10, 5]
    assert {p["total"] for p in pages} == {25}
    assert [r["name"] for p in pages for r in p["items"]] == created
    searched = call(client, "GET", "/repositories", ALICE,
                    query_string={"q": "r1", "per_page": 3}).json
    assert (searched["total"], len(searched["items"])) == (10, 3)


@pytest.mark.parametrize("query", ["page=0", "page=x", "per_page=0", "per_page=101",
                                   "per_page=-5", "page=99999999999999999999"])
def test_bad_page_arguments_are_422(client: FlaskClient, people: None, query: str) -> None:
    error_of(call(client, "GET", f"/repositories?{query}", ALICE), 422, "INVALID_REQUEST")


# -- GET /repositories/<name> ----------------------------------------------------------------

@pytest.mark.parametrize(("who", "name", "status"), [
    pytest.param(ALICE, "alice/httpd", 200, id="owner"),
    pytest.param(ROOT, "alice/httpd", 200, id="admin"),
    pytest.param(BOB, "bob/shared", 200, id="owner, granted to another"),
    pytest.param(ALICE, "bob/shared", 200, id="granted"),
    pytest.param(ALICE, "carol/team/a", 200, id="namespace grant"),
    pytest.param(BOB, "alice/web", 200, id="public"),
    pytest.param(BOB, "alice/httpd", 404, id="private: no existence leak"),
    pytest.param(BOB, "alice/nothing", 404, id="missing"),
    pytest.param(ROOT, "alice/nothing", 404, id="missing, admin"),
    pytest.param(ALICE, "Alice/Httpd", 422, id="invalid name"),
])
def test_read_one_repository(client: FlaskClient, catalogue: None, who: Who, name: str,
                             status: int) -> None:
    response = call(client, "GET", f"/repositories/{name}", who)
    if status == 200:
        assert response.status_code == 200
        assert response.json["name"] == name
    else:
        error_of(response, status)


def test_hidden_and_missing_repositories_answer_alike(client: FlaskClient,
                                                      catalogue: None) -> None:
    hidden = call(client, "GET", "/repositories/alice/httpd", BOB)
    missing = call(client, "GET", "/repositories/alice/httpe", BOB)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json["errors"][0]["message"].replace("httpd", "httpe") == \
        missing.json["errors"][0]["message"]


def test_limited_token_does_not_see_other_repositories(client: FlaskClient,
                                                       catalogue: None) -> None:
    token = new_token(client, "alice", permission="read", repositories=["alice/web"])
    assert call(client, "GET", "/repositories/alice/web", token).status_code == 200
    error_of(call(client, "GET", "/repositories/alice/httpd", token), 404)


def test_repository_named_grants_is_reachable(client: FlaskClient, people: None) -> None:
    """``grants`` is a valid path component, so ``alice/grants`` is a valid repository."""
    created = call(client, "POST", "/repositories", ALICE, json={"name": "alice/grants"})
    assert created.status_code == 201
    response = call(client, "GET", "/repositories/alice/grants", ALICE)
    assert response.status_code == 200, response.json
    assert response.json == {**created.json, "tags": []}


# -- PATCH /repositories/<name> --------------------------------------------------------------

@pytest.mark.parametrize("who", [ALICE, ROOT])
def test_owner_or_admin_sets_visibility(client: FlaskClient, httpd: str, decode: Decode,
                                        who: Who) -> None:
    response = call(client, "PATCH", "/repositories/alice/httpd", who,
                    json={"visibility": "public"})
    assert response.status_code == 200
    assert response.json["visibility"] == "public"
    assert pull_push(client, decode, "alice/httpd", None) == ["pull"]
    call(client, "PATCH", "/repositories/alice/httpd", who, json={"visibility": "private"})
    assert pull_push(client, decode, "alice/httpd", None) == []


@pytest.mark.parametrize(("who", "status"), [
    pytest.param(BOB, 403, id="another user, even with a grant"),
    pytest.param("read", 403, id="read-only token"),
    pytest.param("write", 403, id="write token"),
    pytest.param("delete", 403, id="delete token"),
    pytest.param("admin token", 403, id="admin's delete token"),
])
def test_set_visibility_needs_a_manager(app: Flask, client: FlaskClient, httpd: str,
                                        who: Who, status: int) -> None:
    who = token_for(client, who)
    before = snapshot(app)
    response = call(client, "PATCH", "/repositories/alice/httpd", who,
                    json={"visibility": "public"})
    if status == 200:
        assert response.status_code == 200
    else:
        error_of(response, status, "DENIED")
        assert snapshot(app) == before


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/repositories/alice/httpd", {"visibility": "internal"}, 422),
    ("/repositories/alice/httpd", {"visibility": None}, 422),
    ("/repositories/alice/httpd", {}, 422),
    ("/repositories/alice/httpd", {"visibility": "public", "name": "alice/x"}, 422),
    ("/repositories/alice/httpd", "public", 400),
    ("/repositories/alice/missing", {"visibility": "public"}, 404),
    ("/repositories/alice/HTTPD", {"visibility": "public"}, 422),
])
def test_bad_visibility_change_changes_nothing(app: Flask, client: FlaskClient, httpd: str,
                                               path: str, body: Any, status: int) -> None:
    before = snapshot(app)
    error_of(call(client, "PATCH", path, ALICE, json=body), status)
    assert snapshot(app) == before


# -- DELETE /repositories/<name> -------------------------------------------------------------

def test_owner_deletes_repository_and_its_grants(app: Flask, client: FlaskClient, httpd: str,
                                                 decode: Decode) -> None:
    call(client, "PUT", "/namespaces/alice/grants/bob", ALICE, json={"actions": ["pull"]})
    response = call(client, "DELETE", "/repositories/alice/httpd", ALICE)
    assert response.status_code == 204 and response.get_data() == b""
    error_of(call(client, "GET", "/repositories/alice/httpd", ALICE), 404)
    after = snapshot(app)
    assert after["repositories"] == []
    assert [(g.username, g.target) for g in after["grants"]] == [("bob", "alice/*")]


@pytest.mark.parametrize(("who", "path", "status"), [
    pytest.param(BOB, "/repositories/alice/httpd", 403, id="another user"),
    pytest.param("read", "/repositories/alice/httpd", 403, id="read-only token"),
    pytest.param("write", "/repositories/alice/httpd", 403, id="write token"),
    # a delete token may delete the images (never the record): that needs REGISTRY_URL
    pytest.param("delete", "/repositories/alice/httpd", 503, id="delete token"),
    pytest.param("admin token", "/repositories/alice/httpd", 503, id="admin's delete token"),
    pytest.param(ALICE, "/repositories/alice/missing", 404, id="missing"),
    pytest.param(ALICE, "/repositories/alice/Bad", 422, id="invalid name"),
])
def test_delete_repository_refused(app: Flask, client: FlaskClient, httpd: str, who: Who,
                                   path: str, status: int) -> None:
    who = token_for(client, who)
    before = snapshot(app)
    error_of(call(client, "DELETE", path, who), status)
    assert snapshot(app) == before


def test_admin_deletes_any_repository(client: FlaskClient, httpd: str) -> None:
    assert call(client, "DELETE", "/repositories/alice/httpd", ROOT).status_code == 204


# -- grants on a repository ------------------------------------------------------------------

def test_owner_grants_changes_and_revokes(client: FlaskClient, people: None,
                                          decode: Decode) -> None:
    url = "/repositories/alice/httpd/-/grants/bob"
    response = call(client, "PUT", url, ALICE, json={"actions": ["pull"]})
    assert response.status_code == 200
    assert response.json == {"username": "bob", "target": "alice/httpd", "actions": ["pull"]}
    assert pull_push(client, decode, "alice/httpd", BOB) == ["pull"]
    assert call(client, "PUT", url, ALICE, json={"actions": ["push", "pull"]}).json["actions"] \
        == ["pull", "push"]
    assert pull_push(client, decode, "alice/httpd", BOB) == ["pull", "push"]
    assert call(client, "GET", "/repositories/alice/httpd/-/grants", ALICE).json == {"items": [
        {"username": "bob", "target": "alice/httpd", "actions": ["pull", "push"]}]}
    assert call(client, "DELETE", url, ALICE).status_code == 204
    assert pull_push(client, decode, "alice/httpd", BOB) == []
    assert call(client, "GET", "/repositories/alice/httpd/-/grants", ALICE).json == {"items": []}


def test_star_grants_every_action(client: FlaskClient, people: None) -> None:
    response = call(client, "PUT", "/repositories/alice/httpd/-/grants/bob", ALICE,
                    json={"actions": ["*"]})
    assert response.json["actions"] == ["delete", "pull", "push"]


def test_admin_manages_grants_on_top_level_repositories(client: FlaskClient, people: None,
                                                        decode: Decode) -> None:
    assert call(client, "PUT", "/repositories/httpd/-/grants/alice", ROOT,
                json={"actions": ["pull", "push"]}).status_code == 200
    assert call(client, "GET", "/repositories/httpd/-/grants", ROOT).json["items"][0][
        "username"] == "alice"
    assert pull_push(client, decode, "httpd", ALICE) == ["pull", "push"]
    assert call(client, "DELETE", "/repositories/httpd/-/grants/alice", ROOT).status_code == 204


@pytest.mark.parametrize(("method", "path", "who", "body", "status"), [
    pytest.param("GET", "/repositories/alice/httpd/-/grants", BOB, None, 403, id="list: other"),
    pytest.param("PUT", "/repositories/alice/httpd/-/grants/bob", BOB, {"actions": ["push"]}, 403,
                 id="grant self on another's"),
    pytest.param("PUT", "/repositories/httpd/-/grants/bob", ALICE, {"actions": ["pull"]}, 403,
                 id="grant on top level"),
    pytest.param("DELETE", "/repositories/alice/httpd/-/grants/bob", BOB, None, 403,
                 id="revoke on another's"),
    pytest.param("PUT", "/repositories/alice/httpd/-/grants/bob", "read", {"actions": ["push"]},
                 403, id="read-only token"),
    pytest.param("DELETE", "/repositories/alice/httpd/-/grants/bob", "read", None, 403,
                 id="revoke with read-only token"),
    pytest.param("PUT", "/repositories/alice/httpd/-/grants/Bob", ALICE,
                 {"actions": ["pull"]}, 422, id="invalid user name"),
    pytest.param("PUT", "/repositories/alice/httpd/-/grants/bob", "write", {"actions": ["pull"]},
                 403, id="write token"),
    pytest.param("DELETE", "/repositories/alice/httpd/-/grants/bob", "delete", None, 403,
                 id="revoke with a delete token"),
    pytest.param("PUT", "/repositories/alice/httpd/-/grants/bob", "admin token",
                 {"actions": ["*"]}, 403, id="admin's delete token"),
    pytest.param("DELETE", "/repositories/alice/httpd/-/grants/root", ALICE, None, 404,
                 id="no such grant"),
    pytest.param("PUT", "/repositories/alice/httpd/-/grants/bob", ALICE, {"actions": []}, 422,
                 id="no actions"),
    pytest.param("PUT", "/repositories/alice/httpd/-/grants/bob", ALICE,
                 {"actions": ["pull", "admin"]}, 422, id="unknown action"),
    pytest.param("PUT", "/repositories/alice/httpd/-/grants/bob", ALICE, {"actions": "pull"}, 422,
                 id="actions not a list"),
    pytest.param("PUT", "/repositories/alice/httpd/-/grants/bob", ALICE, {"actions": [1]}, 422,
                 id="actions not strings"),
    pytest.param("PUT", "/repositories/alice/httpd/-/grants/bob", ALICE, {}, 422,
                 id="actions missing"),
    pytest.param("PUT", "/repositories/alice/httpd/-/grants/bob", ALICE,
                 {"actions": ["pull"], "until": "2030"}, 422, id="unknown field"),
    pytest.param("PUT", "/repositories/alice/httpd/-/grants/bob", ALICE, ["pull"], 400,
                 id="not an object"),
    pytest.param("PUT", "/repositories/alice/HTTPD/-/grants/bob", ALICE, {"actions": ["pull"]},
                 422, id="invalid repository"),
])
def test_repository_grant_refused(app: Flask, client: FlaskClient, httpd: str, method: str,
                                  path: str, who: Who, body: Any, status: int) -> None:
    who = token_for(client, who)
    before = snapshot(app)
    error_of(call(client, method, path, who, json=body), status)
    assert snapshot(app) == before


# -- grants on a namespace -------------------------------------------------------------------

@pytest.mark.parametrize("who", [ALICE, ROOT])
def test_namespace_grant_covers_every_repository(client: FlaskClient, people: None,
                                                 decode: Decode, who: Who) -> None:
    url = "/namespaces/alice/grants/bob"
    response = call(client, "PUT", url, who, json={"actions": ["pull", "push"]})
    assert response.json == {"username": "bob", "target": "alice/*",
                             "actions": ["pull", "push"]}
    assert pull_push(client, decode, "alice/new/thing", BOB) == ["pull", "push"]
    assert pull_push(client, decode, "alicex/thing", BOB) == []
    assert call(client, "GET", "/namespaces/alice/grants", who).json["items"] == [
        response.json]
    assert call(client, "DELETE", url, who).status_code == 204
    assert pull_push(client, decode, "alice/new/thing", BOB) == []


@pytest.mark.parametrize(("method", "path", "who", "body", "status"), [
    pytest.param("GET", "/namespaces/alice/grants", BOB, None, 403, id="list: other"),
    pytest.param("PUT", "/namespaces/alice/grants/bob", BOB, {"actions": ["push"]}, 403,
                 id="grant self on another's"),
    pytest.param("DELETE", "/namespaces/alice/grants/bob", BOB, None, 403, id="revoke: other"),
    pytest.param("PUT", "/namespaces/alice/grants/bob", "read", {"actions": ["push"]}, 403,
                 id="read-only token"),
    pytest.param("PUT", "/namespaces/alice/grants/bob", "limited", {"actions": ["push"]}, 403,
                 id="token limited to one repository"),
    pytest.param("PUT", "/namespaces/Alice/grants/bob", ALICE, {"actions": ["pull"]}, 422,
                 id="invalid namespace"),
    pytest.param("PUT", "/namespaces/alice/grants/Bob", ALICE, {"actions": ["pull"]}, 422,
                 id="invalid user name"),
    pytest.param("PUT", "/namespaces/alice/grants/bob", "write", {"actions": ["push"]}, 403,
                 id="write token"),
    pytest.param("DELETE", "/namespaces/alice/grants/bob", "delete", None, 403,
                 id="revoke with a delete token"),
    pytest.param("PUT", "/namespaces/alice/grants/carol", "admin token", {"actions": ["*"]}, 403,
                 id="admin's delete token"),
    pytest.param("DELETE", "/namespaces/alice/grants/root", ALICE, None, 404,
                 id="no such grant"),
    pytest.param("PUT", "/namespaces/alice/grants/bob", ALICE, {"actions": ["everything"]}, 422,
                 id="unknown action"),
    pytest.param("PUT", "/namespaces/alice/grants/bob", ALICE, 7, 400, id="not an object"),
])
def test_namespace_grant_refused(app: Flask, client: FlaskClient, people: None, method: str,
                                 path: str, who: Who, body: Any, status: int) -> None:
    call(client, "PUT", "/namespaces/alice/grants/bob", ALICE, json={"actions": ["pull"]})
    if who == "limited":
        who = new_token(client, "alice", permission="delete", repositories=["alice/httpd"])
    who = token_for(client, who)
    before = snapshot(app)
    error_of(call(client, method, path, who, json=body), status)
    assert snapshot(app) == before


def test_a_namespace_token_does_not_manage_its_namespace(app: Flask, client: FlaskClient,
                                                        people: None) -> None:
    token = new_token(client, "alice", permission="delete", repositories=["alice/*"])
    before = snapshot(app)
    error_of(call(client, "PUT", "/namespaces/alice/grants/bob", token,
                  json={"actions": ["pull"]}), 403, "DENIED")
    assert snapshot(app) == before


# -- access tokens change nothing they could not push (issue 10, finding 3) ------------------

@pytest.mark.parametrize("permission", ["write", "delete"])
def test_a_push_token_registers_with_the_default_visibility_only(
        app: Flask, client: FlaskClient, people: None, permission: str) -> None:
    token = new_token(client, "alice", permission=permission)
    response = call(client, "POST", "/repositories", token, json={"name": "alice/ci"})
    assert (response.status_code, response.json["visibility"]) == (201, "private")
    response = call(client, "POST", "/repositories", token,
                    json={"name": "alice/ci2", "visibility": "private"})
    assert response.status_code == 201
    before = snapshot(app)
    error_of(call(client, "POST", "/repositories", token,
                  json={"name": "alice/web", "visibility": "public"}), 403, "DENIED")
    assert snapshot(app) == before


@pytest.mark.app_config(DEFAULT_VISIBILITY="public")
def test_a_push_token_follows_the_configured_default(app: Flask, client: FlaskClient,
                                                     people: None) -> None:
    token = new_token(client, "alice", permission="write")
    before = snapshot(app)
    error_of(call(client, "POST", "/repositories", token,
                  json={"name": "alice/ci", "visibility": "private"}), 403, "DENIED")
    assert snapshot(app) == before
    response = call(client, "POST", "/repositories", token, json={"name": "alice/ci"})
    assert (response.status_code, response.json["visibility"]) == (201, "public")


def test_an_admins_push_token_registers_only_where_it_may_push(
        app: Flask, client: FlaskClient, people: None) -> None:
    token = new_token(client, "root", permission="write", repositories=["bob/*"])
    assert call(client, "POST", "/repositories", token, json={"name": "bob/ci"}).status_code \
        == 201
    before = snapshot(app)
    error_of(call(client, "POST", "/repositories", token, json={"name": "alice/ci"}), 403)
    error_of(call(client, "POST", "/repositories", token,
                  json={"name": "bob/pub", "visibility": "public"}), 403)
    assert snapshot(app) == before


@pytest.mark.parametrize("permission", ["read", "write", "delete"])
def test_every_token_makes_no_management_change(app: Flask, client: FlaskClient, httpd: str,
                                                permission: str) -> None:
    """alice's token could grant ``*`` on her private repository, make it public and delete
    its record with everyone's grants."""
    call(client, "PUT", "/namespaces/alice/grants/bob", ALICE, json={"actions": ["pull"]})
    token = new_token(client, "alice", permission=permission)
    before = snapshot(app)
    for method, path, body in [
        ("PUT", "/repositories/alice/httpd/-/grants/carol", {"actions": ["*"]}),
        ("DELETE", "/repositories/alice/httpd/-/grants/bob", None),
        ("PUT", "/namespaces/alice/grants/carol", {"actions": ["*"]}),
        ("DELETE", "/namespaces/alice/grants/bob", None),
        ("PATCH", "/repositories/alice/httpd", {"visibility": "public"}),
        ("POST", "/repositories", {"name": "alice/web", "visibility": "public"}),
    ]:
        error_of(call(client, method, path, token, json=body), 403, "DENIED")
    # a delete token may delete the images, never the record: without REGISTRY_URL, 503
    error_of(call(client, "DELETE", "/repositories/alice/httpd", token),
             *((503, "UNAVAILABLE") if permission == "delete" else (403, "DENIED")))
    assert snapshot(app) == before


@pytest.mark.parametrize("permission", ["read", "write", "delete"])
def test_tokens_read_the_grants_their_owner_may_read(client: FlaskClient, httpd: str,
                                                    permission: str) -> None:
    call(client, "PUT", "/namespaces/alice/grants/bob", ALICE, json={"actions": ["pull"]})
    token = new_token(client, "alice", permission=permission)
    assert call(client, "GET", "/repositories/alice/httpd/-/grants", token).json["items"] == [
        {"username": "bob", "target": "alice/httpd", "actions": ["pull"]}]
    assert call(client, "GET", "/namespaces/alice/grants", token).json["items"] == [
        {"username": "bob", "target": "alice/*", "actions": ["pull"]}]
    limited = new_token(client, "alice", permission=permission, repositories=["alice/other"])
    error_of(call(client, "GET", "/repositories/alice/httpd/-/grants", limited), 403)
    error_of(call(client, "GET", "/namespaces/alice/grants", limited), 403)
    error_of(call(client, "GET", "/repositories/alice/httpd/-/grants",
                  new_token(client, "bob", permission=permission)), 403)


# -- grant routes no repository name can take (issue 10, finding 8) --------------------------

@pytest.fixture
def decoy(app: Flask, people: None, make_user: Any) -> None:
    """mallory holds pull on the admin's ``nginx``; the user nginx planted the repository
    ``nginx/grants/mallory``."""
    make_user("mallory")
    make_user("nginx")
    with app.app_context():
        s: Services = services_of(app)
        s.grants.grant("mallory", "nginx", "pull")
        s.repos.create("nginx/grants/mallory", "private")
        s.repos.create("nginx/grants", "public")


def test_revoking_a_grant_never_deletes_a_repository(app: Flask, client: FlaskClient,
                                                     decoy: None, decode: Decode) -> None:
    mallory = ("mallory", PASSWORD)
    assert pull_push(client, decode, "nginx", mallory) == ["pull"]
    assert call(client, "DELETE", "/repositories/nginx/-/grants/mallory", ROOT).status_code \
        == 204
    assert pull_push(client, decode, "nginx", mallory) == []
    after = snapshot(app)
    assert after["grants"] == []
    assert [name for name, _ in after["repositories"]] == ["nginx/grants",
                                                           "nginx/grants/mallory"]


def test_the_old_grant_shapes_address_repositories(app: Flask, client: FlaskClient,
                                                   decoy: None) -> None:
    assert call(client, "GET", "/repositories/nginx/grants", ROOT).json["name"] == \
        "nginx/grants"
    error_of(call(client, "GET", "/repositories/alice/grants", ROOT), 404)
    before = snapshot(app)
    error_of(call(client, "PUT", "/repositories/nginx/grants/mallory", ROOT,
                  json={"actions": ["pull"]}), 405)
    assert snapshot(app) == before
    assert call(client, "DELETE", "/repositories/nginx/grants/mallory", ROOT).status_code == 204
    after = snapshot(app)
    assert [name for name, _ in after["repositories"]] == ["nginx/grants"]
    assert after["grants"] == before["grants"]


@pytest.mark.parametrize("name", ["alice/-", "alice/-/grants", "-/x", "alice/x/-/grants/bob"])
def test_no_repository_name_has_a_dash_component(app: Flask, client: FlaskClient,
                                                 people: None, name: str) -> None:
    before = snapshot(app)
    error_of(call(client, "POST", "/repositories", ALICE, json={"name": name}), 422,
             "NAME_INVALID")
    assert snapshot(app) == before


def test_grants_on_a_repository_named_like_a_route(client: FlaskClient, people: None,
                                                   decode: Decode) -> None:
    """``alice/grants`` is a repository like any other, grants on it included."""
    assert call(client, "POST", "/repositories", ALICE,
                json={"name": "alice/grants"}).status_code == 201
    assert call(client, "PUT", "/repositories/alice/grants/-/grants/bob", ALICE,
                json={"actions": ["pull"]}).json["target"] == "alice/grants"
    assert pull_push(client, decode, "alice/grants", BOB) == ["pull"]
    assert call(client, "GET", "/repositories/alice/grants/-/grants", ALICE).json["items"][0][
        "target"] == "alice/grants"


# -- grants name users by name, whether or not the account exists (issue 10, finding 11a) ----

@pytest.mark.parametrize("who", [ALICE, ROOT])
def test_a_grant_answers_alike_whether_or_not_the_user_exists(
        client: FlaskClient, httpd: str, who: Who) -> None:
    answers = []
    for username in ("bob", "nobody"):
        for path in (f"/repositories/alice/httpd/-/grants/{username}",
                     f"/namespaces/alice/grants/{username}"):
            response = call(client, "PUT", path, who, json={"actions": ["pull"]})
            answers.append((response.status_code, tuple(sorted(response.json))))
            assert response.json["username"] == username
    assert len(set(answers)) == 1 and answers[0][0] == 200


def test_a_grant_to_a_name_holds_for_the_account_made_later(
        client: FlaskClient, httpd: str, decode: Decode, make_user: Any) -> None:
    assert call(client, "PUT", "/repositories/alice/httpd/-/grants/carol", ALICE,
                json={"actions": ["pull"]}).status_code == 200
    assert call(client, "GET", "/repositories/alice/httpd/-/grants", ALICE).json["items"] == [
        {"username": "bob", "target": "alice/httpd", "actions": ["pull"]},
        {"username": "carol", "target": "alice/httpd", "actions": ["pull"]}]
    make_user("carol")
    assert pull_push(client, decode, "alice/httpd", ("carol", PASSWORD)) == ["pull"]
    assert call(client, "DELETE", "/repositories/alice/httpd/-/grants/carol",
                ALICE).status_code == 204
    assert pull_push(client, decode, "alice/httpd", ("carol", PASSWORD)) == []


@pytest.mark.parametrize("actions", [["push"], ["delete"], ["push", "delete"]])
def test_a_grant_without_pull_does_not_list_the_repository(client: FlaskClient, people: None,
                                                          decode: Decode,
                                                          actions: list[str]) -> None:
    """``GET /repositories`` lists what the caller may pull, as the token endpoint grants it
    (found by tests/test_names.py)."""
    call(client, "POST", "/repositories", ALICE, json={"name": "alice/app"})
    call(client, "PUT", "/repositories/alice/app/-/grants/bob", ALICE, json={"actions": actions})
    assert "pull" not in pull_push(client, decode, "alice/app", BOB)
    assert names(call(client, "GET", "/repositories", BOB)) == []
    error_of(call(client, "GET", "/repositories/alice/app", BOB), 404)

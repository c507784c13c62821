"""What ``/api/v1`` shows of the catalog: the repository listing with tags, sizes, pushes and
pulls (filtered by the caller's rights, searched, sorted, paged), the tags of one repository,
and descriptions (``PATCH``/``POST``). Every refused change is followed by a check that the
database is exactly as before."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from authsvc.core.registry_events import parse_envelope
from authsvc.db.models import Repository, db
from authsvc.db.services import Services, services_of
from tests.api_helpers import ALICE, BOB, ROOT, Who, call, error_of, new_token, snapshot
from tests.test_registry_events import envelope, go_event, manifest_target

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
OCI = "application/vnd.oci.image.manifest.v1+json"


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def stamp(hours: int) -> str:
    return at(hours).strftime("%Y-%m-%dT%H:%M:%SZ")


def digest(seed: str) -> str:
    return "sha256:" + seed * 64


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.json
    return [r["name"] for r in response.json["items"]]


def everything(app: Flask) -> dict[str, Any]:
    """The API's snapshot, with the descriptions and tags."""
    with app.app_context():
        s = services_of(app)
        descriptions = {name: text for name, text in db.session.execute(
            select(Repository.name, Repository.description))}
        return {**snapshot(app), "descriptions": descriptions, "tags": s.catalog.all_tags()}


@pytest.fixture
def shelf(app: Flask, make_user: Any) -> None:
    """root (admin), alice, bob; what the registry holds:

    ============  ========  ======================  ===========
    repository    visible   tags (size, pushed)     description
    ============  ========  ======================  ===========
    alice/app     private   v1 (100, +1h) v2 (50, +3h)  "The app"
    alice/web     public    latest (10, +2h)
    alice/empty   private   -
    bob/tool      private   latest (7, +4h)
    bob/open      public    -
    httpd         private   2.4 (1000, +0h)
    ============  ========  ======================  ===========
    """
    for name, admin in (("root", True), ("alice", False), ("bob", False)):
        make_user(name, admin=admin)
    with app.app_context():
        s: Services = services_of(app)
        for name, visibility in (("alice/app", "private"), ("alice/web", "public"),
                                 ("alice/empty", "private"), ("bob/tool", "private"),
                                 ("bob/open", "public"), ("httpd", "private")):
            s.repos.create(name, visibility)
        pushes = [pushed(repo, tag, size, hours, seed) for repo, tag, size, hours, seed in (
            ("alice/app", "v1", 100, 1, "a"), ("alice/app", "v2", 50, 3, "b"),
            ("alice/web", "latest", 10, 2, "c"), ("bob/tool", "latest", 7, 4, "d"),
            ("httpd", "2.4", 1000, 0, "e"))]
        parsed = parse_envelope(envelope(*pushes))
        assert s.events.record(parsed.events).recorded == 5
        s.repos.set_description("alice/app", "The app")


def pushed(repository: str, tag: str, size: int, hours: int, seed: str) -> dict[str, Any]:
    """The registry's event for a push of ``repository:tag`` by its namespace's owner: an
    image of ``size`` bytes (its config alone) at T0 + ``hours``."""
    target = manifest_target(repository, digest(seed), tag, OCI)
    target["references"] = [{"mediaType": "application/vnd.oci.image.config.v1+json",
                             "size": size, "digest": digest("f")}]
    return go_event("push", target, method="PUT", actor=repository.split("/")[0],
                    event_id=f"{repository}:{tag}", timestamp=stamp(hours))


# -- the listing ---------------------------------------------------------------------------------

ALL = ["alice/app", "alice/empty", "alice/web", "bob/open", "bob/tool", "httpd"]


@pytest.mark.parametrize(("who", "expected"), [
    pytest.param(ROOT, ALL, id="admin: everything"),
    pytest.param(ALICE, ["alice/app", "alice/empty", "alice/web", "bob/open"],
                 id="alice: her own and the public ones"),
    pytest.param(BOB, ["alice/web", "bob/open", "bob/tool"], id="bob: never alice's private"),
])
def test_the_listing_shows_what_the_caller_may_pull(client: FlaskClient, shelf: None,
                                                    who: Who, expected: list[str]) -> None:
    response = call(client, "GET", "/repositories", who)
    assert names(response) == expected
    assert response.json["total"] == len(expected)


def test_anonymous_callers_see_the_public_repositories_only(client: FlaskClient,
                                                            shelf: None) -> None:
    public = [n for n in names(call(client, "GET", "/repositories", ROOT))
              if call(client, "GET", f"/repositories/{n}", ROOT).json["visibility"] == "public"]
    response = call(client, "GET", "/repositories")
    assert public and names(response) == public
    assert response.json["total"] == len(public)
    assert call(client, "GET", f"/repositories/{public[0]}").status_code == 200
    assert call(client, "GET", f"/repositories/{public[0]}/-/tags").status_code == 200
    error_of(call(client, "GET", "/repositories/alice/app"), 404, "NOT_FOUND")
    error_of(call(client, "GET", "/repositories/alice/app/-/tags"), 404, "NOT_FOUND")
    # credentials that are sent are checked: wrong ones are refused, not taken as anonymous
    error_of(call(client, "GET", "/repositories", ("alice", "wrong-password-1")), 401,
             "UNAUTHORIZED")
    # and every other route still needs them
    error_of(call(client, "GET", "/me"), 401, "UNAUTHORIZED")


def test_each_item_tells_tags_size_pushes_and_pulls(client: FlaskClient, shelf: None) -> None:
    items = {r["name"]: r for r in call(client, "GET", "/repositories", ALICE).json["items"]}
    app = items["alice/app"]
    assert {k: v for k, v in app.items() if k != "created_at"} == {
        "name": "alice/app", "visibility": "private", "description": "The app",
        "pushed_at": stamp(3), "pull_count": 0, "last_pulled_at": None, "tag_count": 2,
        "size": 150}
    assert app["created_at"].endswith("Z")
    assert (items["alice/empty"]["tag_count"], items["alice/empty"]["size"],
            items["alice/empty"]["pushed_at"]) == (0, 0, None)


@pytest.mark.parametrize(("targets", "expected"), [
    pytest.param(["alice/web"], ["alice/web"], id="one repository"),
    pytest.param(["alice/*"], ["alice/app", "alice/empty", "alice/web"],
                 id="a namespace: not bob's public ones"),
    pytest.param(["alice/app", "bob/open"], ["alice/app", "bob/open"], id="two"),
    pytest.param(["bob/tool"], [], id="what its owner may not pull"),
])
def test_a_limited_access_token_lists_only_its_repositories(
        client: FlaskClient, shelf: None, targets: list[str], expected: list[str]) -> None:
    token = new_token(client, "alice", permission="read", repositories=targets)
    response = call(client, "GET", "/repositories", token)
    assert names(response) == expected
    assert response.json["total"] == len(expected)


@pytest.mark.parametrize(("query", "expected"), [
    pytest.param({"q": "app"}, ["alice/app"], id="substring"),
    pytest.param({"q": "e"}, ["alice/app", "alice/empty", "alice/web", "bob/open"],
                 id="substring anywhere"),
    pytest.param({"q": "tool", "match": "substring"}, ["bob/tool"], id="substring, explicit"),
    pytest.param({"q": "tool", "match": "prefix"}, [], id="prefix: not inside"),
    pytest.param({"q": "alice/", "match": "prefix"}, ["alice/app", "alice/empty", "alice/web"],
                 id="prefix: a namespace"),
    pytest.param({"q": "b", "match": "prefix"}, ["bob/open", "bob/tool"], id="prefix"),
    pytest.param({"q": "_", "match": "prefix"}, [], id="prefix: _ is no wildcard"),
    pytest.param({"q": "%", "match": "prefix"}, [], id="prefix: % is no wildcard"),
    pytest.param({"match": "prefix"}, ALL, id="prefix of nothing: all"),
])
def test_search_by_substring_or_prefix(client: FlaskClient, shelf: None,
                                       query: dict[str, str], expected: list[str]) -> None:
    response = call(client, "GET", "/repositories", ROOT, query_string=query)
    assert names(response) == expected
    assert response.json["total"] == len(expected)


PUSHED = ["bob/tool", "alice/app", "alice/web", "httpd", "alice/empty", "bob/open"]


def test_sort_by_the_last_push_puts_the_never_pushed_last(client: FlaskClient,
                                                          shelf: None) -> None:
    response = call(client, "GET", "/repositories", ROOT, query_string={"sort": "pushed"})
    assert names(response) == PUSHED
    assert [r["pushed_at"] for r in response.json["items"]] == [
        stamp(4), stamp(3), stamp(2), stamp(0), None, None]
    by_name = call(client, "GET", "/repositories", ROOT, query_string={"sort": "name"})
    assert names(by_name) == ALL


def test_sorted_pages_add_up(client: FlaskClient, shelf: None) -> None:
    pages = [call(client, "GET", "/repositories", ROOT, query_string={
        "sort": "pushed", "page": p, "per_page": 4}).json for p in (1, 2, 3)]
    assert [len(p["items"]) for p in pages] == [4, 2, 0]
    assert {p["total"] for p in pages} == {6}
    assert [r["name"] for p in pages for r in p["items"]] == PUSHED
    searched = call(client, "GET", "/repositories", BOB, query_string={
        "q": "b", "sort": "pushed", "per_page": 1, "page": 2}).json
    assert (searched["total"], [r["name"] for r in searched["items"]]) == (3, ["alice/web"])


@pytest.mark.parametrize("query", [{"sort": "size"}, {"sort": ""}, {"sort": "PUSHED"},
                                   {"match": "regex"}, {"match": "Prefix"}, {"match": ""}])
def test_a_bad_sort_or_match_is_422(client: FlaskClient, shelf: None,
                                    query: dict[str, str]) -> None:
    error_of(call(client, "GET", "/repositories", ALICE, query_string=query), 422,
             "INVALID_REQUEST")


# -- tags ----------------------------------------------------------------------------------------

def test_the_tags_of_a_repository(client: FlaskClient, shelf: None) -> None:
    expected = [
        {"name": "v1", "digest": digest("a"), "media_type": OCI, "size": 100,
         "pushed_at": stamp(1), "pushed_by": "alice"},
        {"name": "v2", "digest": digest("b"), "media_type": OCI, "size": 50,
         "pushed_at": stamp(3), "pushed_by": "alice"}]
    for who in (ALICE, ROOT):
        response = call(client, "GET", "/repositories/alice/app/-/tags", who)
        assert response.status_code == 200
        assert response.json == {"items": expected}
    shown = call(client, "GET", "/repositories/alice/app", ALICE).json
    assert (shown["tags"], shown["tag_count"], shown["size"]) == (expected, 2, 150)
    assert call(client, "GET", "/repositories/alice/web/-/tags", BOB).json["items"][0][
        "name"] == "latest"
    assert call(client, "GET", "/repositories/alice/empty/-/tags", ALICE).json == {"items": []}


@pytest.mark.parametrize(("who", "name"), [
    pytest.param(BOB, "alice/app", id="private, someone else's"),
    pytest.param(BOB, "alice/nothing", id="missing"),
    pytest.param(ROOT, "alice/nothing", id="missing, admin"),
    pytest.param("limited", "alice/app", id="outside the token's repositories"),
])
def test_tags_the_caller_may_not_pull_are_404_as_missing_ones(
        client: FlaskClient, shelf: None, who: Who, name: str) -> None:
    if who == "limited":
        who = new_token(client, "alice", permission="read", repositories=["alice/web"])
    message = error_of(call(client, "GET", f"/repositories/{name}/-/tags", who), 404,
                       "NOT_FOUND")
    assert message == f"repository {name!r} does not exist"


def test_tags_of_an_invalid_name_are_422(client: FlaskClient, shelf: None) -> None:
    error_of(call(client, "GET", "/repositories/Alice/App/-/tags", ALICE), 422)


# -- descriptions --------------------------------------------------------------------------------

@pytest.mark.parametrize("who", [ALICE, ROOT])
def test_owner_or_admin_sets_the_description(client: FlaskClient, shelf: None,
                                             who: Who) -> None:
    text = "Line one\n\tindented — ünïcode ✓\n" + "x" * 900
    response = call(client, "PATCH", "/repositories/alice/app", who,
                    json={"description": text})
    assert response.status_code == 200, response.json
    assert (response.json["description"], response.json["visibility"],
            response.json["tag_count"]) == (text, "private", 2)
    assert call(client, "GET", "/repositories/alice/app", BOB).status_code == 404
    assert call(client, "GET", "/repositories/alice/app", ALICE).json["description"] == text
    both = call(client, "PATCH", "/repositories/alice/app", who,
                json={"description": "", "visibility": "public"})
    assert (both.json["description"], both.json["visibility"]) == ("", "public")
    assert call(client, "GET", "/repositories/alice/app", BOB).json["description"] == ""


def test_a_description_of_1000_characters_is_fine(client: FlaskClient, shelf: None) -> None:
    response = call(client, "PATCH", "/repositories/alice/app", ALICE,
                    json={"description": "é" * 1000})
    assert response.status_code == 200
    assert response.json["description"] == "é" * 1000


@pytest.mark.parametrize("who", [
    pytest.param(BOB, id="another user"),
    pytest.param("read", id="owner's read token"),
    pytest.param("write", id="owner's write token"),
    pytest.param("delete", id="owner's delete token"),
    pytest.param("admin token", id="admin's delete token"),
])
def test_a_description_needs_the_owner_or_an_admin_with_a_password(
        app: Flask, client: FlaskClient, shelf: None, who: Who) -> None:
    if who in ("read", "write", "delete"):
        who = new_token(client, "alice", permission=who)
    elif who == "admin token":
        who = new_token(client, "root", permission="delete")
    before = everything(app)
    response = call(client, "PATCH", "/repositories/alice/app", who,
                    json={"description": "defaced"})
    error_of(response, 403, "DENIED")
    assert everything(app) == before


@pytest.mark.parametrize(("body", "status"), [
    pytest.param({"description": "x" * 1001}, 422, id="1001 characters"),
    pytest.param({"description": "nul\x00"}, 422, id="NUL"),
    pytest.param({"description": "\x1b[31mred"}, 422, id="terminal escape"),
    pytest.param({"description": "carriage\rreturn"}, 422, id="CR"),
    pytest.param({"description": "del\x7f"}, 422, id="DEL"),
    pytest.param({"description": "next\x85line"}, 422, id="C1 control"),
    pytest.param({"description": 7}, 422, id="a number"),
    pytest.param({"description": None}, 422, id="null"),
    pytest.param({"description": "fine", "visibility": "internal"}, 422,
                 id="fine, with a bad visibility"),
    pytest.param({"description": "x" * 1001, "visibility": "public"}, 422,
                 id="too long, with a good visibility"),
    pytest.param({"summary": "x"}, 422, id="unknown field"),
    pytest.param({}, 422, id="nothing"),
    pytest.param("text", 400, id="no JSON object"),
])
def test_a_bad_description_is_refused_and_changes_nothing(
        app: Flask, client: FlaskClient, shelf: None, body: Any, status: int) -> None:
    before = everything(app)
    error_of(call(client, "PATCH", "/repositories/alice/app", ALICE, json=body), status)
    assert everything(app) == before


def test_a_description_of_a_missing_repository_is_404(app: Flask, client: FlaskClient,
                                                      shelf: None) -> None:
    before = everything(app)
    error_of(call(client, "PATCH", "/repositories/alice/nothing", ALICE,
                  json={"description": "x"}), 404)
    assert everything(app) == before


def test_a_new_repository_with_a_description(client: FlaskClient, shelf: None) -> None:
    response = call(client, "POST", "/repositories", ALICE,
                    json={"name": "alice/new", "description": "Fresh\nand new"})
    assert response.status_code == 201, response.json
    assert response.json["description"] == "Fresh\nand new"
    shown = call(client, "GET", "/repositories/alice/new", ALICE).json
    assert (shown["description"], shown["tags"], shown["pushed_at"]) == (
        "Fresh\nand new", [], None)


@pytest.mark.parametrize(("who", "status"), [
    pytest.param(BOB, 403, id="in someone else's namespace"),
    pytest.param("write", 403, id="a push token may not describe"),
])
def test_a_new_repository_with_a_description_refused(app: Flask, client: FlaskClient,
                                                     shelf: None, who: Who,
                                                     status: int) -> None:
    if who == "write":
        who = new_token(client, "alice", permission="write")
    before = everything(app)
    error_of(call(client, "POST", "/repositories", who,
                  json={"name": "alice/new", "description": "mine"}), status, "DENIED")
    assert everything(app) == before


@pytest.mark.parametrize("description", ["x" * 1001, "bell\x07"], ids=["too long", "BEL"])
def test_a_new_repository_with_a_bad_description_is_not_created(
        app: Flask, client: FlaskClient, shelf: None, description: str) -> None:
    before = everything(app)
    error_of(call(client, "POST", "/repositories", ALICE,
                  json={"name": "alice/new", "description": description}), 422)
    assert everything(app) == before

"""A repository's grants and deletes on its page (``/ui/r/NAME``), through Flask's test client
over HTTPS with CSRF on: who may give and remove grants, what the delete confirmation says, and
that a refused, wrong or unconfirmable form changes nothing. Real registry deletes are in the
e2e tests."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.db.services import services_of
from tests.api_helpers import BOB, token_actions
from tests.api_helpers import snapshot as api_snapshot
from tests.e2e.processes import free_port
from tests.test_pages import DIGEST, browser, get, post, push, sign_in  # noqa: F401 - fixture

REPO = "/ui/r/alice/httpd"
#: A registry URL where nothing listens: every request is refused at once.
CLOSED = f"https://127.0.0.1:{free_port()}"
OTHER = "sha256:" + "cd" * 32
Decode = Callable[[str], dict[str, Any]]


def snapshot(app: Flask) -> dict[str, Any]:
    with app.app_context():
        tags = services_of(app).catalog.all_tags()
    return {**api_snapshot(app), "tags": tags}


@pytest.fixture
def users(make_user: Callable[..., str]) -> None:
    make_user("alice")
    make_user("bob")


@pytest.fixture
def httpd(app: Flask, users: None) -> None:
    push(app, "alice/httpd", "v1")
    push(app, "alice/httpd", "latest")
    with app.app_context():
        services_of(app).catalog.put_tag(
            "alice/httpd", "v2", OTHER, "application/vnd.oci.image.manifest.v1+json", 10,
            pushed_at=datetime(2026, 12, 1, 16, 0, tzinfo=UTC), pushed_by="alice")


@pytest.fixture
def alice(browser: FlaskClient, httpd: None) -> FlaskClient:  # noqa: F811 - fixture
    sign_in(browser, "alice")
    return browser


def grant(client: FlaskClient, username: str, *actions: str) -> Any:
    return post(client, f"{REPO}/-/grants", {"username": username, **dict.fromkeys(actions, "y")},
                token_from=REPO)


def test_the_owner_grants_bob_pull_then_removes_it(
        app: Flask, alice: FlaskClient, decode: Decode) -> None:
    page = get(alice, REPO).get_data(as_text=True)
    assert 'id="grants-heading"' in page
    assert "No grants: only alice and admins reach this repository" in page
    answer = grant(alice, "bob", "pull")
    assert answer.status_code == 303 and answer.headers["Location"] == REPO
    page = get(alice, REPO).get_data(as_text=True)
    assert '<th scope="row">bob</th>' in page and "Remove the grant of bob" in page
    bob = app.test_client()
    bob.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": "localhost"})
    sign_in(bob, "bob")
    assert "alice/httpd" in get(bob, "/ui").get_data(as_text=True)
    assert get(bob, REPO).status_code == 200
    assert token_actions(alice, decode, "alice/httpd", BOB, "pull") == {"pull"}

    answer = post(alice, f"{REPO}/-/grants/remove", {"username": "bob"}, token_from=REPO)
    assert answer.status_code == 303
    assert snapshot(app)["grants"] == []
    assert "alice/httpd" not in get(bob, "/ui").get_data(as_text=True)
    assert get(bob, REPO).status_code == 404
    assert token_actions(alice, decode, "alice/httpd", BOB, "pull") == set()


def test_grant_actions_are_the_boxes_ticked(app: Flask, alice: FlaskClient) -> None:
    assert grant(alice, "bob", "pull", "push").status_code == 303
    (row,) = snapshot(app)["grants"]
    assert (row.username, row.target, set(row.actions)) == ("bob", "alice/httpd",
                                                            {"pull", "push"})


@pytest.mark.parametrize("token", [None, "wrong"])
def test_grant_forms_without_their_csrf_token_change_nothing(
        app: Flask, alice: FlaskClient, token: str | None) -> None:
    grant(alice, "carol", "pull")
    before = snapshot(app)
    extra = {} if token is None else {"csrf_token": token}
    for path, data in ((f"{REPO}/-/grants", {"username": "bob", "pull": "y"}),
                       (f"{REPO}/-/grants/remove", {"username": "carol"})):
        answer = alice.post(path, data={**data, **extra}, headers={"Accept": "text/html"})
        assert answer.status_code == 400
    assert snapshot(app) == before


def test_someone_else_cannot_change_the_grants(app: Flask, browser: FlaskClient,  # noqa: F811
                                               httpd: None) -> None:
    owner = app.test_client()
    owner.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": "localhost"})
    sign_in(owner, "alice")
    grant(owner, "bob", "pull")
    before = snapshot(app)
    sign_in(browser, "bob")
    page = get(browser, REPO).get_data(as_text=True)
    assert "grants-heading" not in page and "delete-repository" not in page
    answer = post(browser, f"{REPO}/-/grants", {"username": "bob", "push": "y"},
                  token_from="/ui")
    assert answer.status_code in (403, 404)
    answer = post(browser, f"{REPO}/-/grants/remove", {"username": "bob"},
                  token_from="/ui")
    assert answer.status_code in (403, 404)
    answer = post(browser, "/ui/r/alice/other/-/grants", {"username": "bob", "pull": "y"},
                  token_from="/ui")
    assert answer.status_code == 404
    assert snapshot(app) == before


@pytest.mark.parametrize(("username", "actions", "problem"), [
    ("Bob!", ("pull",), "User name: invalid user name"),
    ("", ("pull",), "User name: Enter the user name to grant."),
    ("bob", (), "May: Choose at least one of pull, push, delete."),
])
def test_a_bad_grant_says_which_field_and_changes_nothing(
        app: Flask, alice: FlaskClient, username: str, actions: tuple[str, ...],
        problem: str) -> None:
    before = snapshot(app)
    answer = grant(alice, username, *actions)
    assert answer.status_code == 422
    text = answer.get_data(as_text=True)
    assert problem in text and 'id="grants-heading"' in text
    assert snapshot(app) == before


def test_the_tag_delete_page_names_the_tags_sharing_the_image(alice: FlaskClient) -> None:
    page = get(alice, REPO).get_data(as_text=True)
    assert "/ui/r/alice/httpd/-/delete?tag=v1" in page and 'id="delete-repository"' in page
    answer = get(alice, f"{REPO}/-/delete?tag=v1")
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "alice/httpd:latest" in text and "alice/httpd:v1" in text
    assert "alice/httpd:v2" not in text and DIGEST in text
    assert 'id="shared-tags"' in text and "Type v1 to confirm" in text
    lone = get(alice, f"{REPO}/-/delete?tag=v2").get_data(as_text=True)
    assert 'id="shared-tags"' not in lone and "alice/httpd:v1" not in lone
    assert get(alice, f"{REPO}/-/delete?tag=nope").status_code == 404
    whole = get(alice, f"{REPO}/-/delete").get_data(as_text=True)
    assert "Type alice/httpd to confirm" in whole and "alice/httpd:v2" in whole


def test_bob_without_delete_sees_no_delete_buttons(app: Flask, alice: FlaskClient,
                                                   make_user: Callable[..., str]) -> None:
    grant(alice, "bob", "pull")
    bob = app.test_client()
    bob.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": "localhost"})
    sign_in(bob, "bob")
    page = get(bob, REPO).get_data(as_text=True)
    assert "/-/delete" not in page and "grants-heading" not in page
    assert get(bob, f"{REPO}/-/delete?tag=v1").status_code == 403
    before = snapshot(app)
    answer = post(bob, f"{REPO}/-/delete", {"tag": "v1", "confirm": "v1"}, token_from=REPO)
    assert answer.status_code == 403
    assert snapshot(app) == before


@pytest.mark.parametrize(("tag", "confirm"), [("v1", "v1"), ("", "alice/httpd")])
def test_without_registry_url_a_delete_says_so_and_changes_nothing(
        app: Flask, alice: FlaskClient, tag: str, confirm: str) -> None:
    before = snapshot(app)
    page = f"{REPO}/-/delete" + (f"?tag={tag}" if tag else "")
    answer = post(alice, f"{REPO}/-/delete", {"tag": tag, "confirm": confirm}, token_from=page)
    assert answer.status_code == 503
    assert "REGISTRY_URL is not set" in answer.get_data(as_text=True)
    assert snapshot(app) == before


@pytest.mark.parametrize(("tag", "confirm"), [("v1", "latest"), ("v1", ""),
                                              ("", "alice/other"), ("", "v1")])
def test_a_wrong_confirmation_changes_nothing(
        app: Flask, alice: FlaskClient, tag: str, confirm: str) -> None:
    before = snapshot(app)
    page = f"{REPO}/-/delete" + (f"?tag={tag}" if tag else "")
    answer = post(alice, f"{REPO}/-/delete", {"tag": tag, "confirm": confirm}, token_from=page)
    assert answer.status_code == 422
    assert "Confirmation:" in answer.get_data(as_text=True)
    assert snapshot(app) == before


def test_a_delete_without_its_csrf_token_changes_nothing(app: Flask,
                                                         alice: FlaskClient) -> None:
    before = snapshot(app)
    answer = alice.post(f"{REPO}/-/delete", data={"tag": "", "confirm": "alice/httpd"},
                        headers={"Accept": "text/html"})
    assert answer.status_code == 400
    assert snapshot(app) == before


def test_without_registry_url_the_owner_forgets_a_repository_without_tags(
        app: Flask, browser: FlaskClient, users: None) -> None:  # noqa: F811 - fixture
    with app.app_context():
        services_of(app).repos.create("alice/empty", "private")
    sign_in(browser, "alice")
    answer = post(browser, "/ui/r/alice/empty/-/delete", {"confirm": "alice/empty"},
                  token_from="/ui/r/alice/empty/-/delete")
    assert answer.status_code == 303 and answer.headers["Location"] == "/ui"
    assert snapshot(app)["repositories"] == []


@pytest.mark.app_config(REGISTRY_URL=CLOSED)
@pytest.mark.parametrize(("tag", "confirm"), [("v1", "v1"), ("", "alice/httpd")])
def test_an_unreachable_registry_says_so_and_changes_nothing(
        app: Flask, alice: FlaskClient, tag: str, confirm: str) -> None:
    before = snapshot(app)
    page = f"{REPO}/-/delete" + (f"?tag={tag}" if tag else "")
    answer = post(alice, f"{REPO}/-/delete", {"tag": tag, "confirm": confirm}, token_from=page)
    assert answer.status_code == 502
    text = answer.get_data(as_text=True)
    assert "Nothing was deleted." in text and 'role="alert"' in text
    assert snapshot(app) == before

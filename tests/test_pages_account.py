"""The access tokens page (``/ui/tokens``) and the account page (``/ui/account``): a token's
secret shown once and working at ``/token`` until revoked, CSRF, one user never reaching
another's tokens, changing the password, and ending Docker clients and other browsers."""

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from authsvc.db.models import AccessToken, RefreshToken, WebSession
from authsvc.db.services import services_of
from tests.conftest import PASSWORD
from tests.test_pages import get, post, session_count, sign_in
from tests.token_helpers import get_token

NEW_PASSWORD = "a brand new password"
SECRET = re.compile(r"authsvc_pat_[A-Za-z0-9_-]+")


def https_client(app: Flask) -> FlaskClient:
    """A test client that speaks HTTPS, as a browser to `authsvc serve`."""
    client = app.test_client()
    client.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": "localhost"})
    return client


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    return https_client(app)


@pytest.fixture
def users(make_user: Callable[..., str]) -> None:
    make_user("alice")
    make_user("bob")


def token_ids(app: Flask) -> list[int]:
    with app.app_context():
        return list(services_of(app).access_tokens.session.execute(
            select(AccessToken.id).order_by(AccessToken.id)).scalars())


def create_token(client: FlaskClient, name: str = "ci", **fields: str) -> str:
    """Create a token on the page; return its secret, read from the result page."""
    answer = post(client, "/ui/tokens", {"name": name, "permission": "read", **fields},
                  token_from="/ui/tokens")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    found = SECRET.search(answer.get_data(as_text=True))
    assert found
    return found.group(0)


def pulls(client: FlaskClient, user: str, secret: str) -> int:
    return int(get_token(client, f"repository:{user}/app:pull", auth=(user, secret)).status_code)


# -- access tokens ------------------------------------------------------------------------

def test_a_new_token_is_shown_once_works_at_token_and_revoking_ends_it(
        app: Flask, browser: FlaskClient, users: None) -> None:
    sign_in(browser, "alice")
    answer = post(browser, "/ui/tokens", {"name": "ci", "permission": "write",
                                          "expires_in_days": "30",
                                          "repositories": "alice/app, alice/web"},
                  token_from="/ui/tokens")
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200
    secret = SECRET.search(text)
    assert secret
    host = app.config["REGISTRY_HOST"]
    assert (f"echo {secret.group(0)} | docker login -u alice --password-stdin {host}"
            in text)
    assert 'class="copy"' in text
    listing = get(browser, "/ui/tokens").get_data(as_text=True)
    assert "ci" in listing and "alice/app, alice/web" in listing and "write" in listing
    assert "authsvc_pat_" not in listing  # never again
    api = app.test_client()
    assert pulls(api, "alice", secret.group(0)) == 200
    (token_id,) = token_ids(app)
    answer = post(browser, f"/ui/tokens/{token_id}/revoke", {}, token_from="/ui/tokens")
    assert answer.status_code == 303 and answer.headers["Location"] == "/ui/tokens"
    assert token_ids(app) == []
    assert pulls(api, "alice", secret.group(0)) == 401


def test_a_bad_token_form_names_the_field_and_creates_nothing(
        app: Flask, browser: FlaskClient, users: None) -> None:
    sign_in(browser, "alice")
    answer = post(browser, "/ui/tokens", {"name": "", "permission": "read",
                                          "expires_in_days": "0"}, token_from="/ui/tokens")
    text = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "Name: Enter a name for the token." in text
    assert "Expires in days (optional): Enter a number of days" in text
    assert token_ids(app) == []


def test_without_the_csrf_token_nothing_changes(app: Flask, browser: FlaskClient,
                                                users: None) -> None:
    sign_in(browser, "alice")
    assert post(browser, "/ui/tokens", {"name": "ci", "permission": "read"}).status_code == 400
    assert token_ids(app) == []
    create_token(browser)
    (token_id,) = token_ids(app)
    assert post(browser, f"/ui/tokens/{token_id}/revoke", {}).status_code == 400
    assert token_ids(app) == [token_id]
    answer = post(browser, "/ui/account/password", {
        "current_password": PASSWORD, "new_password": NEW_PASSWORD,
        "new_password_again": NEW_PASSWORD})
    assert answer.status_code == 400
    assert sign_in(https_client(app), "alice").status_code == 303  # the old password still works


def test_bob_cannot_revoke_alices_token(app: Flask, browser: FlaskClient,
                                        users: None) -> None:
    sign_in(browser, "alice")
    secret = create_token(browser)
    (token_id,) = token_ids(app)
    bob = https_client(app)
    sign_in(bob, "bob")
    assert f'id="token-{token_id}"' not in get(bob, "/ui/tokens").get_data(as_text=True)
    assert post(bob, f"/ui/tokens/{token_id}/revoke", {}, token_from="/ui/tokens"
                ).status_code == 404
    assert token_ids(app) == [token_id]
    assert pulls(app.test_client(), "alice", secret) == 200


def test_the_pages_want_a_sign_in(browser: FlaskClient, users: None) -> None:
    for path in ("/ui/tokens", "/ui/account"):
        answer = get(browser, path)
        assert answer.status_code == 303 and answer.headers["Location"].startswith("/ui/signin")


# -- the account ---------------------------------------------------------------------------

def change_password(client: FlaskClient, current: str, new: str = NEW_PASSWORD,
                    again: str | None = None) -> TestResponse:
    return post(client, "/ui/account/password", {
        "current_password": current, "new_password": new,
        "new_password_again": new if again is None else again}, token_from="/ui/account")


def test_a_wrong_current_password_names_the_field_and_changes_nothing(
        app: Flask, browser: FlaskClient, users: None) -> None:
    sign_in(browser, "alice")
    other = https_client(app)
    sign_in(other, "alice")
    answer = change_password(browser, "not my password")
    text = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "Current password: This is not your current password." in text
    assert session_count(app) == 2
    answer = change_password(browser, PASSWORD, again="something else")
    assert "New password again: The two new passwords differ." in answer.get_data(
        as_text=True)
    assert get(other, "/ui").status_code == 200
    assert sign_in(https_client(app), "alice").status_code == 303


def test_changing_the_password_ends_the_other_sessions_and_the_old_password(
        app: Flask, browser: FlaskClient, users: None) -> None:
    sign_in(browser, "alice")
    other = https_client(app)
    sign_in(other, "alice")
    with app.app_context():
        services_of(app).refresh_tokens.issue("alice", "registry", "docker")
    answer = change_password(browser, PASSWORD)
    assert answer.status_code == 303
    page = get(browser, answer.headers["Location"])
    assert page.status_code == 200 and 'id="password-changed"' in page.get_data(as_text=True)
    assert get(other, "/ui").status_code == 303  # the other browser is signed out
    assert session_count(app) == 1
    with app.app_context():
        assert services_of(app).refresh_tokens.list_for("alice") == []
    assert sign_in(https_client(app), "alice").status_code == 401
    assert sign_in(https_client(app), "alice", NEW_PASSWORD).status_code == 303


def test_a_too_short_new_password_is_refused(app: Flask, browser: FlaskClient,
                                             users: None) -> None:
    sign_in(browser, "alice")
    answer = change_password(browser, PASSWORD, "short")
    assert answer.status_code == 422
    assert "New password: password must have at least" in answer.get_data(
        as_text=True)
    assert sign_in(https_client(app), "alice").status_code == 303


def test_revoking_a_refresh_token(app: Flask, browser: FlaskClient,
                                  users: None) -> None:
    with app.app_context():
        services_of(app).refresh_tokens.issue("alice", "registry", "docker-desktop")
        services_of(app).refresh_tokens.issue("bob", "registry", "bobs-laptop")
        ids = dict(services_of(app).refresh_tokens.session.execute(
            select(RefreshToken.client_id, RefreshToken.id)).all())
    sign_in(browser, "alice")
    page = get(browser, "/ui/account").get_data(as_text=True)
    assert "docker-desktop" in page and "bobs-laptop" not in page
    assert post(browser, f"/ui/account/refresh-tokens/{ids['bobs-laptop']}/revoke", {},
                token_from="/ui/account").status_code == 404
    answer = post(browser, f"/ui/account/refresh-tokens/{ids['docker-desktop']}/revoke", {},
                  token_from="/ui/account")
    assert answer.status_code == 303
    with app.app_context():
        assert services_of(app).refresh_tokens.list_for("alice") == []
        assert len(services_of(app).refresh_tokens.list_for("bob")) == 1


def test_revoking_another_web_session(app: Flask, browser: FlaskClient,
                                      users: None) -> None:
    other = https_client(app)
    sign_in(other, "alice")
    sign_in(browser, "alice")
    bob = https_client(app)
    sign_in(bob, "bob")
    with app.app_context():
        rows = services_of(app).web_sessions.session.execute(
            select(WebSession.id).order_by(WebSession.id)).scalars().all()
    first, mine, bobs = rows
    page = get(browser, "/ui/account").get_data(as_text=True)
    assert 'id="this-browser"' in page
    assert page.index(f'id="web-session-{mine}"') < page.index('id="this-browser"') < page.index(
        f'id="web-session-{first}"')
    assert f'id="web-session-{bobs}"' not in page
    assert post(browser, f"/ui/account/sessions/{bobs}/revoke", {},
                token_from="/ui/account").status_code == 404
    answer = post(browser, f"/ui/account/sessions/{first}/revoke", {}, token_from="/ui/account")
    assert answer.status_code == 303 and answer.headers["Location"] == "/ui/account"
    assert get(other, "/ui").status_code == 303
    assert get(browser, "/ui").status_code == 200
    assert get(bob, "/ui").status_code == 200

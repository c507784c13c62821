"""The admin pages (``/ui/admin/users``, ``/ui/admin/audit``): admins add, disable, enable,
reset and promote users through the same service and rules as the API; anyone else gets the
404 of a page that does not exist and changes nothing; every POST needs its CSRF token."""

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.db.audit import Event
from authsvc.db.models import User
from authsvc.db.services import services_of
from tests.conftest import PASSWORD
from tests.test_pages import get, post, sign_in
from tests.test_pages_account import https_client

USERS = "/ui/admin/users"
NEW_PASSWORD = "a brand new password"


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    return https_client(app)


@pytest.fixture
def people(make_user: Callable[..., str]) -> None:
    make_user("root", admin=True)
    make_user("alice")


def user(app: Flask, name: str) -> User | None:
    with app.app_context():
        accounts = services_of(app).accounts
        accounts.session.expire_all()
        found: User | None = accounts.session.query(User).filter_by(username=name).first()
        return found


def flags(app: Flask, name: str) -> tuple[bool, bool] | None:
    found = user(app, name)
    return None if found is None else (found.admin, found.disabled)


def signed_in_as(client: FlaskClient) -> bool:
    return get(client, "/ui/account").status_code == 200


def test_an_admin_sees_the_users_and_the_nav_link(app: Flask, browser: FlaskClient,
                                                   people: None) -> None:
    sign_in(browser, "root")
    page = get(browser, USERS)
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="user-alice"' in text and 'id="user-root"' in text
    assert 'id="admin-link"' in text and "<script>" not in text


def test_an_admin_adds_disables_enables_resets_and_promotes(
        app: Flask, browser: FlaskClient, people: None) -> None:
    sign_in(browser, "root")
    answer = post(browser, USERS, {"username": "carol", "password": PASSWORD, "admin": "y"},
                  token_from=USERS)
    assert answer.status_code == 303
    assert flags(app, "carol") == (True, False)

    alice = https_client(app)
    sign_in(alice, "alice")
    assert signed_in_as(alice)
    assert post(browser, f"{USERS}/alice/disable", {}, token_from=USERS).status_code == 303
    assert flags(app, "alice") == (False, True)
    assert not signed_in_as(alice)  # the disabled user's session ended
    assert sign_in(alice, "alice").status_code != 303

    assert post(browser, f"{USERS}/alice/enable", {}, token_from=USERS).status_code == 303
    assert flags(app, "alice") == (False, False)

    answer = post(browser, f"{USERS}/alice/password",
                  {"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD},
                  token_from=USERS)
    assert answer.status_code == 303
    assert sign_in(alice, "alice", NEW_PASSWORD).status_code == 303

    assert post(browser, f"{USERS}/alice/make-admin", {}, token_from=USERS).status_code == 303
    assert flags(app, "alice") == (True, False)
    assert post(browser, f"{USERS}/alice/remove-admin", {}, token_from=USERS).status_code == 303
    assert flags(app, "alice") == (False, False)


def test_errors_name_the_field(app: Flask, browser: FlaskClient, people: None) -> None:
    sign_in(browser, "root")
    answer = post(browser, USERS, {"username": "alice", "password": PASSWORD}, token_from=USERS)
    assert answer.status_code == 422
    assert 'id="username-error"' in answer.get_data(as_text=True)
    answer = post(browser, f"{USERS}/alice/password",
                  {"new_password": NEW_PASSWORD, "new_password_again": "other"},
                  token_from=USERS)
    assert answer.status_code == 422
    assert "The two new passwords differ." in answer.get_data(as_text=True)
    assert sign_in(https_client(app), "alice").status_code == 303  # password unchanged


def test_the_last_admin_cannot_remove_their_own_admin_flag(
        app: Flask, browser: FlaskClient, people: None) -> None:
    sign_in(browser, "root")
    answer = post(browser, f"{USERS}/root/remove-admin", {}, token_from=USERS)
    assert answer.status_code == 409
    assert "last enabled admin" in answer.get_data(as_text=True)
    assert flags(app, "root") == (True, False)
    answer = post(browser, f"{USERS}/root/disable", {}, token_from=USERS)
    assert answer.status_code == 409
    assert flags(app, "root") == (True, False)


@pytest.mark.parametrize("path", [USERS, f"{USERS}/alice/disable", f"{USERS}/alice/enable",
                                  f"{USERS}/alice/make-admin", f"{USERS}/root/remove-admin",
                                  f"{USERS}/alice/password", "/ui/admin/audit", "/ui/admin"])
def test_a_non_admin_gets_404_and_changes_nothing(app: Flask, browser: FlaskClient,
                                                  people: None, path: str) -> None:
    sign_in(browser, "alice")
    assert 'id="admin-link"' not in get(browser, "/ui/account").get_data(as_text=True)
    assert get(browser, path).status_code in (404, 405)
    data = {"username": "mallory", "password": PASSWORD, "admin": "y",
            "new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD}
    assert post(browser, path, data, token_from="/ui/account").status_code in (404, 405)
    assert get(browser, USERS).status_code == 404
    assert user(app, "mallory") is None
    assert flags(app, "alice") == (False, False)
    assert flags(app, "root") == (True, False)
    assert sign_in(https_client(app), "alice").status_code == 303


def test_a_visitor_not_signed_in_gets_404(browser: FlaskClient, people: None) -> None:
    assert get(browser, USERS).status_code == 404
    assert get(browser, "/ui/admin/audit").status_code == 404


def test_without_csrf_nothing_changes(app: Flask, browser: FlaskClient, people: None) -> None:
    sign_in(browser, "root")
    assert post(browser, USERS, {"username": "carol", "password": PASSWORD}).status_code == 400
    assert post(browser, f"{USERS}/alice/disable", {}).status_code == 400
    assert post(browser, f"{USERS}/alice/make-admin", {}).status_code == 400
    assert user(app, "carol") is None
    assert flags(app, "alice") == (False, False)


def test_users_are_paged_50_a_page(app: Flask, browser: FlaskClient, people: None) -> None:
    with app.app_context():
        accounts = services_of(app).accounts
        for n in range(55):
            accounts.create_user(f"user{n:02d}", None, robot=True)
    sign_in(browser, "root")
    first = get(browser, USERS).get_data(as_text=True)
    second = get(browser, f"{USERS}?page=2").get_data(as_text=True)
    assert first.count('<tr id="user-') == 50 and second.count('<tr id="user-') == 7
    assert 'rel="next"' in first and 'rel="prev"' in second and 'rel="next"' not in second


def add_events(app: Flask, count: int, actor: str, action: str) -> None:
    with app.app_context():
        audit = services_of(app).audit
        for n in range(count):
            audit.add(Event(action, target=f"t{n}"), actor=actor)
        audit.session.commit()


def test_audit_newest_first_filtered_by_actor_and_action(app: Flask, browser: FlaskClient,
                                                         people: None) -> None:
    add_events(app, 3, "alice", "repo.pushed")
    add_events(app, 2, "bob", "repo.pulled")
    add_events(app, 1, "alice", "grant.set")
    sign_in(browser, "root")
    whole = get(browser, "/ui/admin/audit").get_data(as_text=True)
    assert whole.index("grant.set") < whole.index("repo.pulled") < whole.index("repo.pushed")
    text = get(browser, "/ui/admin/audit?actor=alice&action=repo.").get_data(as_text=True)
    assert text.count('class="event"') == 3
    assert "repo.pulled" not in text and "grant.set" not in text
    assert '<td data-label="Who" class="actor">bob</td>' not in text
    assert get(browser, "/ui/admin/audit?since=2000-01-01").status_code == 200
    assert get(browser, "/ui/admin/audit?since=nonsense").status_code == 422


def test_audit_is_paged(app: Flask, browser: FlaskClient, people: None) -> None:
    add_events(app, 60, "bob", "zz.test")
    sign_in(browser, "root")
    first = get(browser, "/ui/admin/audit?action=zz.").get_data(as_text=True)
    second = get(browser, "/ui/admin/audit?action=zz.&page=2").get_data(as_text=True)
    assert first.count('class="event"') == 50 and second.count('class="event"') == 10
    assert "action=zz.&amp;page=2" in first and 'rel="prev"' in second

"""The admin pages (``/ui/admin/users``, ``/ui/admin/repositories``, ``/ui/admin/audit``):
admins add, disable, enable, reset and promote users through the same service and rules as the
API, see every repository and filter the audit trail; anyone else gets the 404 of a page that
does not exist and changes nothing; every POST needs its CSRF token."""

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.db.audit import Event
from authsvc.db.models import AuditEvent, User
from authsvc.db.services import services_of
from tests.conftest import PASSWORD
from tests.test_pages import get, post, push, sign_in
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

    assert 'id="reset-heading"' not in get(browser, USERS).get_data(as_text=True)
    reset_page = get(browser, f"{USERS}?reset=alice").get_data(as_text=True)
    assert "Reset the password of alice" in reset_page
    assert 'action="/ui/admin/users/alice/password"' in reset_page
    assert 'id="reset-heading"' not in get(browser, f"{USERS}?reset=nobody").get_data(
        as_text=True)
    answer = post(browser, f"{USERS}/alice/password",
                  {"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD},
                  token_from=f"{USERS}?reset=alice")
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
                                  f"{USERS}/alice/password", "/ui/admin/audit", "/ui/admin",
                                  "/ui/admin/repositories"])
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
    assert get(browser, "/ui/admin/repositories").status_code == 404


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


def events_shown(page: str) -> list[str]:
    return re.findall(r'<td data-label="Action" class="action">([^< ]+)', page)


def test_audit_filtered_by_outcome(app: Flask, browser: FlaskClient, people: None) -> None:
    add_events(app, 2, "alice", "token.issued")
    add_events(app, 1, "alice", "token.refused")
    add_events(app, 1, "mallory", "login.failed")
    sign_in(browser, "root")
    refused = get(browser, "/ui/admin/audit?outcome=refused").get_data(as_text=True)
    assert sorted(events_shown(refused)) == ["login.failed", "token.refused"]
    assert refused.count('class="badge refused"') == 2
    succeeded = get(browser, "/ui/admin/audit?outcome=succeeded&actor=alice")
    assert events_shown(succeeded.get_data(as_text=True)) == ["token.issued"] * 2
    # an outcome the form does not offer filters nothing
    anything = get(browser, "/ui/admin/audit?outcome=whatever&actor=alice")
    assert len(events_shown(anything.get_data(as_text=True))) == 3


def test_audit_filtered_by_a_time_range_of_whole_days(app: Flask, browser: FlaskClient,
                                                      people: None) -> None:
    add_events(app, 1, "bob", "old.event")
    add_events(app, 1, "bob", "new.event")
    ten_days_ago = (datetime.now(UTC) - timedelta(days=10)).replace(tzinfo=None)
    with app.app_context():
        session = services_of(app).audit.session
        session.query(AuditEvent).filter_by(action="old.event").update({"at": ten_days_ago})
        session.commit()
    sign_in(browser, "root")
    today = datetime.now(UTC).date()
    before = (today - timedelta(days=5)).isoformat()

    def shown(query: str) -> list[str]:
        page = get(browser, f"/ui/admin/audit?actor=bob&{query}")
        assert page.status_code == 200
        return events_shown(page.get_data(as_text=True))

    assert shown(f"until={before}") == ["old.event"]
    assert shown(f"since={before}") == ["new.event"]
    assert shown(f"since={before}&until={today.isoformat()}") == ["new.event"]
    assert shown(f"until={(today - timedelta(days=10)).isoformat()}") == ["old.event"]
    assert shown(f"until={(today - timedelta(days=11)).isoformat()}") == []
    wrong = get(browser, "/ui/admin/audit?until=31/12/2026")
    assert wrong.status_code == 422
    assert 'id="until-error"' in wrong.get_data(as_text=True)


def repositories_shown(page: str) -> list[str]:
    return re.findall(r'class="repo-link" href="[^"]+">([^<]+)</a>', page)


def test_an_admin_sees_every_repository_filtered_and_sorted(
        app: Flask, browser: FlaskClient, people: None) -> None:
    push(app, "alice/secret", at=datetime(2026, 1, 1))
    push(app, "alice/shared", visibility="public", at=datetime(2026, 3, 1))
    push(app, "root/tools", at=datetime(2026, 2, 1))
    sign_in(browser, "root")
    whole = get(browser, "/ui/admin/repositories").get_data(as_text=True)
    assert repositories_shown(whole) == ["alice/secret", "alice/shared", "root/tools"]
    assert "3 repositories: 1 public, 2 private." in whole
    private = get(browser, "/ui/admin/repositories?visibility=private").get_data(as_text=True)
    assert repositories_shown(private) == ["alice/secret", "root/tools"]
    by_push = get(browser, "/ui/admin/repositories?sort=pushed").get_data(as_text=True)
    assert repositories_shown(by_push) == ["alice/shared", "root/tools", "alice/secret"]
    named = get(browser, "/ui/admin/repositories?q=alice&visibility=public")
    assert repositories_shown(named.get_data(as_text=True)) == ["alice/shared"]
    none = get(browser, "/ui/admin/repositories?q=nothing-like-it").get_data(as_text=True)
    assert 'id="no-results"' in none and repositories_shown(none) == []
    # alice, who is no admin, sees her own but none of root's in Explore
    sign_in(alice := https_client(app), "alice")
    assert "root/tools" not in get(alice, "/ui/explore").get_data(as_text=True)


def test_all_repositories_are_paged_50_a_page(app: Flask, browser: FlaskClient,
                                              people: None) -> None:
    with app.app_context():
        repos = services_of(app).repos
        for n in range(53):
            repos.create(f"alice/r{n:02d}")
        repos.session.commit()
    sign_in(browser, "root")
    first = get(browser, "/ui/admin/repositories?visibility=private").get_data(as_text=True)
    second = get(browser, "/ui/admin/repositories?visibility=private&page=2")
    assert len(repositories_shown(first)) == 50
    assert repositories_shown(second.get_data(as_text=True)) == ["alice/r50", "alice/r51",
                                                                 "alice/r52"]
    assert "visibility=private&amp;page=2" in first

"""The web pages under /ui, through Flask's test client over HTTPS: sign in and out, the
cookie, CSRF, the security headers, and what each user sees.

The tests open an app context only around their own reads (never the ``state`` fixture's for
the whole test): a request inside a pushed app context shares its ``g``, where Flask-WTF
keeps the request's form token."""

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from authsvc.db.models import AuditEvent, WebSession
from authsvc.db.services import services_of
from tests.conftest import PASSWORD

BASE = "https://localhost"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Referer": f"{BASE}/ui"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    """A test client that speaks HTTPS, as a browser to `authsvc serve`."""
    client = app.test_client()
    client.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": "localhost"})
    return client


def get(client: FlaskClient, path: str) -> TestResponse:
    return client.get(path, headers=HTML)


def csrf_token(page: TestResponse) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                      r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)
    return found.group(1) or found.group(2)


def post(client: FlaskClient, path: str, data: dict[str, str], *,
         token_from: str | None = None) -> TestResponse:
    """POST a form with the CSRF token of the page ``token_from`` (the form's own page)."""
    if token_from is not None:
        data = {"csrf_token": csrf_token(get(client, token_from)), **data}
    return client.post(path, data=data, headers=HTML)


def sign_in(client: FlaskClient, name: str, password: str = PASSWORD) -> TestResponse:
    return post(client, "/ui/signin", {"username": name, "password": password},
                token_from="/ui/signin")


@pytest.fixture
def users(make_user: Callable[..., str]) -> None:
    make_user("alice")
    make_user("bob")


def push(app: Flask, name: str, tag: str = "v1", *, visibility: str = "private",
         size: int = 2841, at: datetime | None = None) -> None:
    with app.app_context():
        state = services_of(app)
        if state.repos.find(name) is None:
            state.repos.create(name, visibility)
        state.catalog.put_tag(name, tag, DIGEST, "application/vnd.oci.image.manifest.v1+json",
                              size, pushed_at=at or datetime(2026, 12, 1, 15, 30, tzinfo=UTC),
                              pushed_by=name.split("/")[0])


def session_count(app: Flask) -> int:
    with app.app_context():
        return int(services_of(app).web_sessions.session.execute(
            select(func.count(WebSession.id))).scalar_one())


# -- signing in ---------------------------------------------------------------------------

def test_sign_in_sets_a_private_cookie_and_shows_the_user(app: Flask, browser: FlaskClient,
                                                          users: None) -> None:
    page = get(browser, "/ui/signin")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    for needle in ('id="username"', 'id="password"', '<label for="username">',
                   '<label for="password">', ">Sign in</button>", '<html lang="en">'):
        assert needle in text
    answer = sign_in(browser, "alice")
    assert answer.status_code == 303 and answer.headers["Location"] == "/ui"
    cookie = [c for c in answer.headers.getlist("Set-Cookie") if "authsvc_session=" in c][-1]
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
    assert {"secure", "httponly", "path", "samesite"} <= set(flags)
    assert flags["path"] == "Path=/ui" and flags["samesite"] == "SameSite=Lax"
    home = get(browser, "/ui")
    assert home.status_code == 200
    assert 'id="current-user">alice<' in home.get_data(as_text=True)
    assert ">Sign out</button>" in home.get_data(as_text=True)
    assert session_count(app) == 1


def test_the_cookie_holds_a_signed_secret_the_database_only_hashes(
        app: Flask, browser: FlaskClient, users: None) -> None:
    answer = sign_in(browser, "alice")
    value = answer.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    with app.app_context():
        row = services_of(app).web_sessions.session.execute(select(WebSession)).scalar_one()
        assert row.secret_hash not in value
    forged = app.test_client()
    forged.environ_base.update({"wsgi.url_scheme": "https"})
    forged.set_cookie("authsvc_session", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"),
                      path="/ui")
    assert get(forged, "/ui").status_code == 303  # a tampered cookie signs nobody in


@pytest.mark.parametrize(("password", "problem"), [
    ("wrong password", "Wrong user name or password."),
    ("", "Password: Enter your password."),
])
def test_a_wrong_or_missing_password_signs_nobody_in(
        app: Flask, browser: FlaskClient, users: None, password: str, problem: str) -> None:
    answer = sign_in(browser, "alice", password)
    assert answer.status_code in (401, 422)
    assert problem in answer.get_data(as_text=True)
    assert session_count(app) == 0
    assert get(browser, "/ui").status_code == 303


def test_a_failed_sign_in_is_audited(app: Flask, browser: FlaskClient, users: None) -> None:
    sign_in(browser, "alice", "wrong password")
    with app.app_context():
        actions = services_of(app).audit.session.execute(
            select(AuditEvent.action, AuditEvent.actor)).all()
    assert ("login.failed", "alice") in [tuple(row) for row in actions]


@pytest.mark.app_config(LOCKOUT_ATTEMPTS=2, LOCKOUT_STORE="memory")
def test_the_lockout_applies_to_the_web_sign_in(app: Flask, browser: FlaskClient,
                                                users: None) -> None:
    for _ in range(2):
        assert sign_in(browser, "alice", "wrong password").status_code == 401
    answer = sign_in(browser, "alice")  # the right password, past the limit
    assert answer.status_code == 429
    assert "Too many failed sign-ins" in answer.get_data(as_text=True)
    assert session_count(app) == 0


def test_an_access_token_is_not_a_web_login(app: Flask, browser: FlaskClient,
                                            users: None) -> None:
    with app.app_context():
        token = services_of(app).access_tokens.create("alice", "ci", "read")
    secret = token if isinstance(token, str) else token[1]
    answer = sign_in(browser, "alice", secret)
    assert answer.status_code == 401
    assert "An access token cannot sign in here" in answer.get_data(as_text=True)
    assert session_count(app) == 0


def test_sign_out_ends_the_session(app: Flask, browser: FlaskClient, users: None) -> None:
    sign_in(browser, "alice")
    answer = post(browser, "/ui/signout", {}, token_from="/ui")
    assert answer.status_code == 303 and answer.headers["Location"] == "/ui/signin"
    assert session_count(app) == 0
    assert get(browser, "/ui").status_code == 303


@pytest.mark.parametrize("change", ["password", "disable"])
def test_a_password_change_or_disabling_ends_the_browser_session(
        app: Flask, browser: FlaskClient, users: None, change: str) -> None:
    sign_in(browser, "alice")
    with app.app_context():
        accounts = services_of(app).accounts
        if change == "password":
            accounts.set_password("alice", "a brand new password")
        else:
            accounts.set_disabled("alice")
    answer = get(browser, "/ui")
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/ui/signin")


def test_a_page_asked_for_signed_out_comes_back_after_sign_in(
        browser: FlaskClient, users: None) -> None:
    answer = get(browser, "/ui/explore?q=web")
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/ui/signin?next=%2Fui%2Fexplore%3Fq%3Dweb"
    page = get(browser, answer.headers["Location"])
    data = {"csrf_token": csrf_token(page), "username": "alice", "password": PASSWORD}
    back = browser.post("/ui/signin?next=%2Fui%2Fexplore%3Fq%3Dweb", data=data, headers=HTML)
    assert back.headers["Location"] == "/ui/explore?q=web"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/ui",
                                    "/ui//evil.example", "/api/v1/me", "/ui\\evil", "/uix"])
def test_sign_in_never_sends_the_browser_elsewhere(browser: FlaskClient, users: None,
                                                   target: str) -> None:
    page = get(browser, "/ui/signin")
    data = {"csrf_token": csrf_token(page), "username": "alice", "password": PASSWORD}
    answer = browser.post("/ui/signin", query_string={"next": target}, data=data, headers=HTML)
    assert answer.headers["Location"] == "/ui"


# -- CSRF ---------------------------------------------------------------------------------

@pytest.mark.parametrize("token", [None, "", "wrong", "IjEyMyI.abc.def"])
def test_sign_in_without_the_right_csrf_token_signs_nobody_in(
        app: Flask, browser: FlaskClient, users: None, token: str | None) -> None:
    get(browser, "/ui/signin")
    data = {"username": "alice", "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    answer = browser.post("/ui/signin", data=data, headers=HTML)
    assert answer.status_code == 400
    assert "Nothing was changed" in answer.get_data(as_text=True)
    assert session_count(app) == 0


@pytest.mark.parametrize("token", [None, "wrong", "other browser"])
def test_a_form_without_the_right_csrf_token_changes_nothing(
        app: Flask, browser: FlaskClient, users: None, token: str | None) -> None:
    push(app, "alice/web")
    sign_in(browser, "alice")
    data = {"visibility": "public"}
    if token == "other browser":  # a valid token, of another browser's session
        other = app.test_client()
        other.environ_base.update({"wsgi.url_scheme": "https"})
        data["csrf_token"] = csrf_token(get(other, "/ui/signin"))
    elif token is not None:
        data["csrf_token"] = token
    answer = browser.post("/ui/r/alice/web/-/visibility", data=data, headers=HTML)
    assert answer.status_code == 400
    signout = browser.post("/ui/signout", data={}, headers=HTML)
    assert signout.status_code == 400
    with app.app_context():
        assert services_of(app).repos.get("alice/web").visibility == "private"
    assert session_count(app) == 1


def test_csrf_is_the_pages_only_the_api_takes_no_form_token(
        client: FlaskClient, make_user: Callable[..., str]) -> None:
    make_user("root", admin=True)
    answer = client.post("/api/v1/repositories", json={"name": "root/app"},
                         auth=("root", PASSWORD))
    assert answer.status_code == 201
    assert "Set-Cookie" not in answer.headers
    assert client.get("/token?service=registry", auth=("root", PASSWORD)).status_code == 200


# -- headers ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/ui/signin", "/ui", "/ui/explore", "/ui/r/alice/web",
                                  "/ui/r/nobody/nothing", "/ui/nowhere"])
def test_every_page_carries_the_security_headers(app: Flask, browser: FlaskClient,
                                                 users: None, path: str) -> None:
    push(app, "alice/web")
    sign_in(browser, "alice")
    answer = get(browser, path)
    assert answer.headers["Content-Security-Policy"] == CSP
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Cache-Control"] == "no-store"
    text = answer.get_data(as_text=True)
    assert "<script>" not in text and "style=" not in text and "<style" not in text


def test_the_404_page_is_html_for_a_browser_and_json_for_others(
        browser: FlaskClient, users: None) -> None:
    sign_in(browser, "alice")
    page = get(browser, "/ui/nowhere")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Page not found" in page.get_data(as_text=True)
    answer = browser.get("/ui/nowhere")
    assert answer.status_code == 404 and answer.json is not None
    assert answer.json["errors"][0]["code"] == "NOT_FOUND"


def test_the_static_files_are_served_with_the_headers(browser: FlaskClient) -> None:
    for name, kind in (("style.css", "text/css"), ("copy.js", "text/javascript")):
        answer = browser.get(f"/ui/static/{name}")
        assert answer.status_code == 200 and answer.mimetype == kind
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        answer.close()


def test_the_api_gets_none_of_the_page_headers(client: FlaskClient) -> None:
    answer = client.get("/api/v1/openapi.json")
    assert "Content-Security-Policy" not in answer.headers


# -- repositories -------------------------------------------------------------------------

def test_bob_gets_404_for_alices_private_repository(app: Flask, browser: FlaskClient,
                                                     users: None) -> None:
    push(app, "alice/secret")
    sign_in(browser, "bob")
    missing = get(browser, "/ui/r/alice/nothing")
    refused = get(browser, "/ui/r/alice/secret")
    assert refused.status_code == missing.status_code == 404
    assert refused.get_data() == missing.get_data()
    assert "alice/secret" not in get(browser, "/ui").get_data(as_text=True)
    assert "alice/secret" not in get(browser, "/ui/explore").get_data(as_text=True)


def test_the_owner_sees_tags_and_the_docker_pull_line(app: Flask, browser: FlaskClient,
                                                      users: None) -> None:
    push(app, "alice/web", "v1")
    push(app, "alice/web", "v2", at=datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    sign_in(browser, "alice")
    text = get(browser, "/ui/r/alice/web").get_data(as_text=True)
    assert '<code class="pull-line">docker pull localhost:5000/alice/web:v2</code>' in text
    assert "sha256:abababababab" in text and "2.8 kB" in text
    assert "2026-12-02 09:00 UTC" in text and ">alice<" in text
    home = get(browser, "/ui").get_data(as_text=True)
    assert "docker pull localhost:5000/alice/web:v2" in home  # the last pushed tag


def test_my_repositories_lists_my_own_first(app: Flask, browser: FlaskClient,
                                            users: None) -> None:
    push(app, "bob/aaa-public", visibility="public",
         at=datetime(2026, 12, 5, tzinfo=UTC))
    push(app, "alice/zzz")
    sign_in(browser, "alice")
    text = get(browser, "/ui").get_data(as_text=True)
    names = re.findall(r'class="repo-link" href="/ui/r/([^"]+)">', text)
    assert names == ["alice/zzz", "bob/aaa-public"]


def test_a_new_user_is_shown_how_to_push(browser: FlaskClient, users: None) -> None:
    sign_in(browser, "bob")
    text = get(browser, "/ui").get_data(as_text=True)
    assert "Push your first image" in text
    for line in ("docker login localhost:5000",
                 "docker tag httpd:2.4 localhost:5000/bob/httpd:v1",
                 "docker push localhost:5000/bob/httpd:v1"):
        assert f'<code class="pull-line">{line}</code>' in text


@pytest.mark.app_config(REGISTRY_HOST="registry.example.com:5000")
def test_the_pull_line_names_the_registry_host(app: Flask, browser: FlaskClient,
                                               users: None) -> None:
    push(app, "alice/web", "latest")
    sign_in(browser, "alice")
    text = get(browser, "/ui/r/alice/web").get_data(as_text=True)
    assert "docker pull registry.example.com:5000/alice/web:latest" in text


def test_explore_searches_what_the_user_may_pull(app: Flask, browser: FlaskClient,
                                                 users: None) -> None:
    push(app, "alice/web-private")
    push(app, "alice/web-public", visibility="public")
    push(app, "bob/web")
    push(app, "bob/db")
    sign_in(browser, "bob")
    text = get(browser, "/ui/explore?q=web").get_data(as_text=True)
    names = re.findall(r'class="repo-link" href="/ui/r/([^"]+)">', text)
    assert names == ["alice/web-public", "bob/web"]
    assert 'value="web"' in text and 'role="search"' in text
    empty = get(browser, "/ui/explore?q=nothing").get_data(as_text=True)
    assert 'id="no-results"' in empty


def test_explore_pages(app: Flask, browser: FlaskClient, users: None) -> None:
    with app.app_context():
        for i in range(30):
            services_of(app).repos.create(f"alice/r{i:02}")
    sign_in(browser, "alice")
    first = get(browser, "/ui/explore").get_data(as_text=True)
    second = get(browser, "/ui/explore?page=2").get_data(as_text=True)
    assert "Page 1 of 2" in first and 'rel="next"' in first
    assert len(re.findall(r'class="repo-link"', second)) == 5 and 'rel="prev"' in second
    assert "Page 1 of 2" in get(browser, "/ui/explore?page=x").get_data(as_text=True)


def test_the_owner_changes_visibility_and_description(app: Flask, browser: FlaskClient,
                                                      users: None) -> None:
    push(app, "alice/web")
    sign_in(browser, "alice")
    page = "/ui/r/alice/web"
    assert post(browser, f"{page}/-/visibility", {"visibility": "public"},
                token_from=page).status_code == 303
    assert post(browser, f"{page}/-/description", {"description": "nightly httpd"},
                token_from=page).status_code == 303
    too_long = post(browser, f"{page}/-/description", {"description": "x" * 1001},
                    token_from=page)
    assert too_long.status_code == 422
    assert "Description: Description must be at most 1000" in too_long.get_data(as_text=True)
    with app.app_context():
        repo = services_of(app).repos.get("alice/web")
        assert (repo.visibility, repo.description) == ("public", "nightly httpd")


def test_a_user_who_may_pull_but_not_manage_is_refused(app: Flask, browser: FlaskClient,
                                                       users: None) -> None:
    push(app, "alice/web", visibility="public")
    sign_in(browser, "bob")
    page = get(browser, "/ui/r/alice/web")
    assert page.status_code == 200 and "Save visibility" not in page.get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "visibility": "private"}
    assert browser.post("/ui/r/alice/web/-/visibility", data=data,
                        headers=HTML).status_code == 403
    hidden = browser.post("/ui/r/alice/nothing/-/visibility", data=data, headers=HTML)
    assert hidden.status_code == 404
    with app.app_context():
        assert services_of(app).repos.get("alice/web").visibility == "public"


@pytest.mark.parametrize(("count", "text"), [(0, "0 tags"), (1, "1 tag"), (2, "2 tags")])
def test_counts_read_as_words(count: int, text: str) -> None:
    from authsvc.web.pages.formatting import counted

    assert counted(count, "tag") == text

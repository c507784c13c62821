"""The web pages in a real Chromium (Debian's chromium through Debian's chromedriver, headless),
against a real ``authsvc serve`` and a real docker-registry that tells authsvc what is pushed:
alice pushes with skopeo, signs in and finds her image; bob does not; signing out, and an
admin disabling her on the users page, end a session; alice grants bob pull on her repository and
removes it again; she creates an access token on ``/ui/tokens`` that skopeo pulls with until
she revokes it there. Every page visited is saved as a screenshot at
desktop and phone width (``tests/artifacts/screenshots/`` or ``$AUTHSVC_ARTIFACTS``), and
axe-core finds no serious or critical violation on it.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from .browser import Browser, axe_source, chromium, flask_session, missing_browser_tools
from .catalog_fixtures import (  # noqa: F401 - the fixtures authsvc and registry
    CatalogAuthsvc,
    catalog_authsvc,
    catalog_registry,
    eventually,
)
from .clients import Credentials, Skopeo, expect_failure, expect_success
from .conftest import _running_in_ci
from .world import ImageFactory, Registry

pytestmark = pytest.mark.e2e

PAGES_PACKAGE = "authsvc.web.pages"
SIGNIN = "/ui/signin"
HOME = "/ui"
SESSION_COOKIE = "authsvc_session"
EXPLORE = "/ui/explore"
REPOSITORY = "/ui/r/{name}"
REPO = "alice/httpd"
TAG = "v1"
TOKENS = "/ui/tokens"
ACCOUNT = "/ui/account"
ADMIN_USERS = "/ui/admin/users"
ORGS = "/ui/orgs"
DELETE = "/ui/r/{name}/-/delete?tag={tag}"
REFUSED = r"unauthorized|authentication required|invalid username/password|denied"

OpenBrowser = Callable[..., Browser]


def _pages_built() -> bool:
    try:
        return importlib.util.find_spec(PAGES_PACKAGE) is not None
    except ModuleNotFoundError:
        return False


@pytest.fixture(scope="module", autouse=True)
def browser_tools() -> None:
    """Skip when Chromium, chromedriver, certutil or npm are missing (fail when CI is set)."""
    missing = missing_browser_tools()
    if missing:
        message = f"browser test tools not installed: {', '.join(missing)} (scripts/test " \
                  "installs chromium, chromium-driver and libnss3-tools)"
        if _running_in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="module")
def pages() -> None:
    """Skip the tests of the pages until the pages blueprint exists (issue 13)."""
    if not _pages_built():
        pytest.skip(f"the web pages ({PAGES_PACKAGE}, issue 13) are not built yet")
    axe_source()  # install axe-core once, before any browser starts


@pytest.fixture(scope="module")
def pushed(registry: Registry, skopeo: Skopeo, users: dict[str, Credentials],
           make_image: ImageFactory, authsvc: CatalogAuthsvc) -> str:
    """alice pushes alice/httpd:v1 with skopeo; the digest skopeo reports, once authsvc has
    heard of the push from the registry."""
    alice = users["alice"]
    expect_success(skopeo.push(make_image(REPO), registry.ref(REPO, TAG), alice))
    digest = skopeo.digest(registry.ref(REPO, TAG), alice)
    eventually(lambda: authsvc.tags(REPO, alice).get(TAG, {}).get("digest") == digest,
               "authsvc to record the push of alice/httpd:v1")
    return digest


@pytest.fixture
def open_browser(authsvc: CatalogAuthsvc, tmp_path: Path) -> Iterator[OpenBrowser]:
    """A factory of Chromium browsers trusting authsvc's CA (or, with ``trust=False``,
    nothing of ours), all stopped after the test."""
    with ExitStack() as stack:
        def make(label: str, trust: bool = True) -> Browser:
            return stack.enter_context(chromium(authsvc.url, authsvc.ca_file if trust else None,
                                                label, tmp_path))
        yield make


def signed_in_session(authsvc: CatalogAuthsvc, browser: Browser) -> requests.Session:
    """A requests session trusting only authsvc's CA, carrying the browser's cookies (to read
    the headers selenium cannot)."""
    session = authsvc.api()
    for cookie in browser.driver.get_cookies():
        session.cookies.set(cookie["name"], cookie["value"])
    return session


def on_signin_page(browser: Browser) -> bool:
    return bool(browser.find_all("input[name=password]"))


def check_headers(session: requests.Session, url: str) -> None:
    """The security headers of issue 13 on the page at ``url``."""
    answer = session.get(url, timeout=10, allow_redirects=False)
    csp = answer.headers.get("Content-Security-Policy", "")
    assert csp, f"no Content-Security-Policy on {url} ({answer.status_code})"
    script_src = re.search(r"script-src([^;]*)", csp) or re.search(r"default-src([^;]*)", csp)
    assert script_src and "'unsafe-inline'" not in script_src.group(1), (url, csp)
    assert ("frame-ancestors 'none'" in csp or "frame-ancestors 'self'" in csp
            or answer.headers.get("X-Frame-Options")), (url, dict(answer.headers))
    assert "no-store" in answer.headers.get("Cache-Control", ""), (url, dict(answer.headers))


def test_chromium_verifies_authsvc_certificate(open_browser: OpenBrowser,
                                               authsvc: CatalogAuthsvc) -> None:
    """Chromium trusts authsvc through its CA in the NSS database, and only through it: a
    profile without the CA gets the certificate error page."""
    trusting = open_browser("trusting")
    trusting.open("/")
    trusting.assert_no_tls_error()
    stranger = open_browser("stranger", trust=False)
    stranger.driver.get(authsvc.url + "/")
    assert ("Privacy error" in stranger.driver.title
            or "ERR_CERT" in stranger.driver.page_source), stranger.driver.title


def test_alice_sees_her_image(pages: None, pushed: str, open_browser: OpenBrowser,
                              authsvc: CatalogAuthsvc, registry: Registry,
                              users: dict[str, Credentials]) -> None:
    alice = users["alice"]
    browser = open_browser("alice")
    browser.open(SIGNIN)
    browser.check_page("signin")
    browser.sign_in(alice, SIGNIN)
    browser.open(HOME)
    assert not on_signin_page(browser), browser.text()
    browser.check_page("my-repositories")
    browser.link(REPO)  # the repository's name is a link
    pull_lines = [element.text for element in browser.find_all(".pull-line")]
    expected = f"docker pull {registry.address}/{REPO}:{TAG}"
    assert any(expected in line for line in pull_lines), (expected, pull_lines)

    cookie = browser.cookies()[SESSION_COOKIE]
    assert cookie["secure"] and cookie["httpOnly"] and cookie.get("sameSite") == "Lax", cookie
    assert "sid" in flask_session(cookie["value"]), "the session cookie names no web session"

    browser.link(REPO).click()
    browser.wait_until(lambda: browser.path().startswith(REPOSITORY.format(name=REPO)),
                       "the repository page")
    rows = {row.find_element(By.CSS_SELECTOR, "th").text: row
            for row in browser.find_all("table.tags tbody tr")}
    assert TAG in rows, browser.text()
    digest = rows[TAG].find_element(By.CSS_SELECTOR, "code[title]")
    assert digest.get_attribute("title") == pushed, (pushed, digest.get_attribute("title"))
    assert pushed.startswith(digest.text.rstrip("…").rstrip(".")), (pushed, digest.text)
    browser.check_page("repository")

    browser.open(f"{EXPLORE}?q=httpd")
    assert browser.link(REPO)
    browser.check_page("explore")

    session = signed_in_session(authsvc, browser)
    for path in (HOME, REPOSITORY.format(name=REPO), f"{EXPLORE}?q=httpd"):
        check_headers(session, authsvc.url + path)
    check_headers(authsvc.api(), authsvc.url + SIGNIN)


def test_bob_does_not_see_alices_image(pages: None, pushed: str, open_browser: OpenBrowser,
                                       authsvc: CatalogAuthsvc,
                                       users: dict[str, Credentials]) -> None:
    browser = open_browser("bob")
    browser.sign_in(users["bob"], SIGNIN)
    browser.open(HOME)
    assert not on_signin_page(browser), browser.text()
    assert REPO not in browser.text()
    browser.check_page("my-repositories-empty")
    browser.open(f"{EXPLORE}?q=httpd")
    assert REPO not in browser.text()
    browser.open(REPOSITORY.format(name=REPO))
    assert re.search(r"not found", browser.text(), re.IGNORECASE), browser.text()
    browser.check_page("not-found")
    answer = signed_in_session(authsvc, browser).get(
        authsvc.url + REPOSITORY.format(name=REPO), timeout=10, allow_redirects=False)
    assert answer.status_code == 404, answer.status_code
    check_headers(signed_in_session(authsvc, browser), authsvc.url + REPOSITORY.format(name=REPO))


def test_wrong_password_is_refused(pages: None, open_browser: OpenBrowser, authsvc: CatalogAuthsvc,
                                   users: dict[str, Credentials]) -> None:
    browser = open_browser("wrong-password")
    browser.open(SIGNIN)
    browser.fill(username="mallory", password=users["mallory"].password + "x")
    browser.submit("Sign in")
    assert on_signin_page(browser), browser.text()
    problem = browser.find("[role=alert]").text
    assert re.search(r"wrong user name or password", problem, re.IGNORECASE), browser.text()
    browser.check_page("signin-wrong-password")
    # The cookie the form keeps (its CSRF token) names no web session and signs nobody in.
    cookie = browser.cookies().get(SESSION_COOKIE)
    assert cookie is None or "sid" not in flask_session(cookie["value"]), cookie
    browser.open(HOME)
    assert on_signin_page(browser), browser.text()
    answer = signed_in_session(authsvc, browser).get(authsvc.url + HOME, timeout=10,
                                                      allow_redirects=False)
    assert answer.status_code == 303, answer.status_code


def test_sign_out_ends_the_session(pages: None, pushed: str, open_browser: OpenBrowser,
                                   authsvc: CatalogAuthsvc, users: dict[str, Credentials]
                                   ) -> None:
    browser = open_browser("signout")
    browser.sign_in(users["alice"], SIGNIN)
    browser.open(HOME)
    assert REPO in browser.text()
    stolen = signed_in_session(authsvc, browser)  # the session cookie, kept by a thief
    browser.sign_out()
    assert on_signin_page(browser) or REPO not in browser.text(), browser.text()
    browser.check_page("signed-out")
    browser.driver.back()
    browser.driver.refresh()
    assert on_signin_page(browser) and REPO not in browser.text(), browser.text()
    answer = stolen.get(authsvc.url + HOME, timeout=10, allow_redirects=False)
    assert answer.status_code == 303, answer.status_code


def visibility(authsvc: CatalogAuthsvc, name: str) -> str:
    """The repository's visibility as the API reports it to the admin."""
    answer = authsvc.get(f"/repositories/{name}", authsvc.admin)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["visibility"])


def csrf_token(session: requests.Session, url: str) -> str:
    """The form token of the pages ``session`` signs in to (every page's sign-out form)."""
    page = session.get(url, timeout=10).text
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def test_alice_makes_a_repository_public(pages: None, open_browser: OpenBrowser,
                                         authsvc: CatalogAuthsvc, registry: Registry,
                                         skopeo: Skopeo, make_image: ImageFactory,
                                         users: dict[str, Credentials]) -> None:
    """alice makes alice/web public on its page; bob then finds it, and anyone may pull."""
    name = "alice/web"
    expect_success(skopeo.push(make_image(name), registry.ref(name, TAG), users["alice"]))
    eventually(lambda: TAG in authsvc.tags(name, users["alice"]), "authsvc to record alice/web")
    assert visibility(authsvc, name) == "private"
    alice = open_browser("alice-public")
    alice.sign_in(users["alice"], SIGNIN)
    alice.open(REPOSITORY.format(name=name))
    alice.find("#visibility-public").click()
    alice.submit("Save visibility")
    assert alice.path() == REPOSITORY.format(name=name), alice.path()
    assert alice.find("#visibility-public").is_selected()
    alice.check_page("repository-public")
    assert visibility(authsvc, name) == "public"
    expect_success(skopeo.inspect(registry.ref(name, TAG), None))  # anonymous now

    bob = open_browser("bob-public")
    bob.sign_in(users["bob"], SIGNIN)
    bob.open(f"{EXPLORE}?q=web")
    bob.link(name).click()
    bob.wait_until(lambda: bob.path() == REPOSITORY.format(name=name), "alice/web's page")
    assert not bob.find_all("#save-visibility"), "bob may not change alice's repository"
    bob.check_page("repository-public-as-bob")


def test_forms_without_their_token_or_owner_change_nothing(
        pages: None, pushed: str, open_browser: OpenBrowser, authsvc: CatalogAuthsvc,
        users: dict[str, Credentials]) -> None:
    """A visibility form posted without or with a wrong CSRF token, or by bob (with his own
    good token), leaves alice/httpd private."""
    sessions = {}
    for user in ("alice", "bob"):
        browser = open_browser(f"{user}-forms")
        browser.sign_in(users[user], SIGNIN)
        sessions[user] = signed_in_session(authsvc, browser)
    action = authsvc.url + REPOSITORY.format(name=REPO) + "/-/visibility"
    alice, bob = sessions["alice"], sessions["bob"]
    for session in (alice, bob):  # as a browser sends it (Flask-WTF checks it over HTTPS)
        session.headers["Referer"] = authsvc.url + REPOSITORY.format(name=REPO)
    for token in (None, "not-the-token"):
        data = {"visibility": "public"} | ({"csrf_token": token} if token else {})
        answer = alice.post(action, data=data, timeout=10, allow_redirects=False)
        assert answer.status_code == 400, (token, answer.status_code, answer.text[:500])
    data = {"visibility": "public", "csrf_token": csrf_token(bob, authsvc.url + HOME)}
    answer = bob.post(action, data=data, timeout=10, allow_redirects=False)
    assert answer.status_code == 404, (answer.status_code, answer.text[:500])
    assert visibility(authsvc, REPO) == "private"
    # the same form with alice's own token is accepted, so the refusals above were the token's
    # and the owner's, not a broken form (put back at once)
    token = csrf_token(alice, authsvc.url + HOME)
    for value in ("public", "private"):
        answer = alice.post(action, data={"visibility": value, "csrf_token": token},
                            timeout=10, allow_redirects=False)
        assert answer.status_code == 303, (answer.status_code, answer.text[:500])
        assert visibility(authsvc, REPO) == value


def user_row(browser: Browser, name: str) -> WebElement:
    return browser.find(f"#user-{name}")


def test_an_admin_disables_a_user_on_the_page_and_her_session_ends(
        pages: None, pushed: str, open_browser: OpenBrowser, authsvc: CatalogAuthsvc,
        users: dict[str, Credentials]) -> None:
    """The admin clicks Disable in alice's row of /ui/admin/users: alice's next page is the
    sign-in page and her password no longer signs her in; Enable lets her in again. The
    admin's other pages (all repositories, the audit trail with filters) are seen on the way."""
    alice = open_browser("disabled")
    alice.sign_in(users["alice"], SIGNIN)
    alice.open(HOME)
    assert REPO in alice.text()

    admin = open_browser("admin")
    admin.sign_in(authsvc.admin, SIGNIN)
    admin.click(admin.find("#admin-link"), "the admin's users page")
    assert admin.path() == ADMIN_USERS, admin.path()
    admin.check_page("admin-users")
    admin.click(user_row(admin, "alice").find_element(By.XPATH, ".//button[.='Disable']"),
                "the users page after disabling alice")
    assert "disabled" in user_row(admin, "alice").text, user_row(admin, "alice").text
    try:
        alice.driver.refresh()
        assert on_signin_page(alice) and REPO not in alice.text(), alice.text()
        alice.check_page("after-disable")
        alice.sign_in(users["alice"], SIGNIN)
        assert on_signin_page(alice), "a disabled user signed in again"
    finally:
        admin.open(ADMIN_USERS)
        admin.click(user_row(admin, "alice").find_element(By.XPATH, ".//button[.='Enable']"),
                    "the users page after enabling alice")
    assert "disabled" not in user_row(admin, "alice").text
    alice.sign_in(users["alice"], SIGNIN)
    assert not on_signin_page(alice) and REPO in alice.text(), alice.text()

    admin.click(admin.link("Repositories"), "all repositories")
    admin.fill(q="alice/")
    admin.submit("Show")
    assert REPO in {link.text for link in admin.find_all("a.repo-link")}, admin.text()
    admin.check_page("admin-repositories")
    admin.click(admin.link("Audit trail"), "the audit trail")
    admin.fill(actor="admin", action="user.")
    admin.submit("Filter")
    actions = [cell.text for cell in admin.find_all("td.action")]
    assert actions and all(a.startswith("user.updated") for a in actions), actions
    admin.check_page("admin-audit")


def grant_rows(browser: Browser) -> dict[str, str]:
    """The grants table of the repository page: user name to what they may."""
    return {row.find_element(By.CSS_SELECTOR, "th").text:
            row.find_element(By.CSS_SELECTOR, "td").text
            for row in browser.find_all("table.grants tbody tr")}


def test_alice_grants_bob_pull_and_removes_it(pages: None, pushed: str,
                                              open_browser: OpenBrowser,
                                              authsvc: CatalogAuthsvc,
                                              users: dict[str, Credentials]) -> None:
    """alice grants bob pull on alice/httpd on its page: bob finds it in his list and opens
    it; once she removes the grant, bob gets the 404 page."""
    page = REPOSITORY.format(name=REPO)
    alice = open_browser("alice-grants")
    alice.sign_in(users["alice"], SIGNIN)
    alice.open(page)
    assert "bob" not in grant_rows(alice), grant_rows(alice)
    alice.fill(username="bob")
    alice.find("#grant-pull").click()
    alice.submit("Grant")
    assert alice.path() == page, (alice.path(), alice.text()[:2000])
    assert grant_rows(alice).get("bob") == "pull", grant_rows(alice)
    alice.check_page("repository-grants")

    bob = open_browser("bob-granted")
    bob.sign_in(users["bob"], SIGNIN)
    bob.open(HOME)
    assert not on_signin_page(bob), bob.text()
    bob.link(REPO).click()
    bob.wait_until(lambda: bob.path() == page, "alice/httpd's page for bob")
    assert TAG in {row.find_element(By.CSS_SELECTOR, "th").text
                   for row in bob.find_all("table.tags tbody tr")}, bob.text()
    assert not bob.find_all("#give-grant"), "bob may not grant on alice's repository"
    bob.check_page("repository-granted")

    alice.driver.refresh()
    alice.submit("Remove")
    assert alice.path() == page, alice.path()
    assert "bob" not in grant_rows(alice), grant_rows(alice)
    bob.driver.refresh()
    assert re.search(r"not found", bob.text(), re.IGNORECASE), bob.text()
    answer = signed_in_session(authsvc, bob).get(authsvc.url + page, timeout=10,
                                                  allow_redirects=False)
    assert answer.status_code == 404, answer.status_code
    bob.open(HOME)
    assert REPO not in bob.text()


def test_access_token_from_the_page_works_until_revoked(
        pages: None, pushed: str, open_browser: OpenBrowser, registry: Registry,
        skopeo: Skopeo, users: dict[str, Credentials]) -> None:
    """alice creates a read token on /ui/tokens and reads its secret off the page once;
    skopeo inspects alice/httpd:v1 with it until she revokes it on the page."""
    alice = open_browser("alice-tokens")
    alice.sign_in(users["alice"], SIGNIN)
    alice.open(TOKENS)
    assert not on_signin_page(alice), alice.text()
    alice.check_page("tokens")
    alice.fill(name="ci-read")
    alice.find("#permission-read").click()
    alice.submit("Create token")
    secret = alice.find("#token-secret .pull-line").text.strip()
    login = alice.find("#docker-login .pull-line").text
    assert secret and secret in login, (secret, login)
    assert "docker login -u alice --password-stdin" in login, login
    alice.check_page("token-created")

    creds = Credentials("alice", secret)
    ref = registry.ref(REPO, TAG)
    expect_success(skopeo.inspect(ref, creds))

    alice.click(alice.link("Back to access tokens"), "the access tokens page")
    assert alice.path() == TOKENS, alice.path()
    assert secret not in alice.driver.page_source, "the secret is shown only once"
    rows = {row.find_element(By.CSS_SELECTOR, "th").text: row
            for row in alice.find_all("table.tokens tbody tr")}
    assert "ci-read" in rows, alice.text()
    alice.check_page("tokens-listed")
    alice.click(rows["ci-read"].find_element(By.CSS_SELECTOR, "button"), "the page after revoking")
    assert "ci-read" not in {row.find_element(By.CSS_SELECTOR, "th").text
                             for row in alice.find_all("table.tokens tbody tr")}, alice.text()
    expect_failure(skopeo.inspect(ref, creds), REFUSED)
    expect_success(skopeo.inspect(ref, users["alice"]))  # refused for the token, not alice


def test_account_and_delete_confirmation_pages(pages: None, pushed: str,
                                               open_browser: OpenBrowser,
                                               authsvc: CatalogAuthsvc,
                                               users: dict[str, Credentials]) -> None:
    """The account page and a tag's delete confirmation (left unconfirmed: nothing goes)."""
    alice = open_browser("alice-account")
    alice.sign_in(users["alice"], SIGNIN)
    alice.open(ACCOUNT)
    assert not on_signin_page(alice), alice.text()
    assert alice.find("#change-password")
    assert "Signed-in Docker clients" in alice.text(), alice.text()
    alice.check_page("account")

    alice.open(REPOSITORY.format(name=REPO))
    alice.click(alice.find(f"a[aria-label='Delete the tag {TAG}']"), "the confirmation page")
    assert alice.path() == DELETE.format(name=REPO, tag=TAG), alice.path()
    assert f"{REPO}:{TAG}" in alice.find("#doomed-tags").text, alice.text()
    assert alice.find("#confirm-delete")
    alice.check_page("delete-confirm")
    alice.click(alice.link("Cancel"), "the repository page")
    assert alice.path() == REPOSITORY.format(name=REPO), alice.path()
    assert TAG in authsvc.tags(REPO, users["alice"]), "the tag went without a confirmation"


def test_an_owner_builds_a_team_on_the_organisation_page(
        pages: None, open_browser: OpenBrowser, authsvc: CatalogAuthsvc,
        users: dict[str, Credentials]) -> None:
    """An admin creates the organisation acme on /ui/orgs with alice as owner; alice creates
    the team devs there, adds bob and gives it write on acme/*; bob finds acme in his
    organisations and sees the team, without the owner's forms."""
    admin = open_browser("org-admin")
    admin.sign_in(authsvc.admin, SIGNIN)
    admin.open(ORGS)
    admin.fill(name="acme", owners="alice")
    admin.submit("Create organisation")
    assert admin.path() == f"{ORGS}/acme", (admin.path(), admin.text()[:2000])

    alice = open_browser("org-owner")
    alice.sign_in(users["alice"], SIGNIN)
    alice.open(ORGS)
    alice.check_page("orgs")
    alice.click(alice.link("acme"), "acme's page")
    alice.fill(name="devs", description="The people who push")
    alice.submit("Create team")
    alice.find("#member-devs").send_keys("bob")
    alice.click(alice.find("#add-member-devs"), "the page after adding bob")
    alice.find("#permission-devs-write").click()
    alice.click(alice.find("#give-permission-devs"), "the page after giving write")
    team = alice.find("#team-devs").text
    assert "bob" in team and "acme/*: write" in team, team
    alice.check_page("org")

    bob = open_browser("org-member")
    bob.sign_in(users["bob"], SIGNIN)
    bob.open(ORGS)
    bob.click(bob.link("acme"), "acme's page for bob")
    assert "devs" in bob.find("#team-devs").text
    assert not bob.find_all("#create-team") and not bob.find_all("#add-member-devs")
    bob.check_page("org-member")

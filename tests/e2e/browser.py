"""A small harness for the browser tests: Debian's headless Chromium driven by selenium through
Debian's chromedriver (never a downloaded browser or driver), trusting authsvc's CA, with
screenshots at desktop and phone width and axe-core's accessibility check.

Trust stays real: Chromium runs with a private HOME whose NSS database (``~/.pki/nssdb``, made
with ``certutil`` from libnss3-tools) trusts the CA ``authsvc init`` generated, so the server's
certificate is verified as any other (chain, name, validity); no certificate error is ignored.

axe-core comes from the npm registry: ``axe_source()`` runs ``npm install axe-core@4`` once into
``.cache/axe-core/`` (ignored by git) when ``axe.min.js`` is missing, and reads it from there.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import (
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from .clients import Credentials

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CERTUTIL = "certutil"
REPO_ROOT = Path(__file__).resolve().parents[2]
AXE_MAJOR = "4"
AXE_CACHE = REPO_ROOT / ".cache" / "axe-core"
AXE_FILE = AXE_CACHE / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("AUTHSVC_ARTIFACTS") or REPO_ROOT / "tests" / "artifacts")
SCREENSHOTS = ARTIFACTS / "screenshots"
DESKTOP = (1280, 900)
PHONE = (390, 844)
WAIT = 10.0
BLOCKING_IMPACTS = ("serious", "critical")


def missing_browser_tools() -> list[str]:
    """The programs the browser tests need that are not installed."""
    wanted = [CHROMIUM, CHROMEDRIVER, shutil.which(CERTUTIL) or CERTUTIL, "npm"]
    return [tool for tool in wanted if shutil.which(tool) is None]


def axe_source() -> str:
    """The text of ``axe.min.js`` (axe-core major version ``AXE_MAJOR`` from the npm
    registry), installed into ``.cache/axe-core/`` the first time it is missing."""
    if not AXE_FILE.is_file():
        AXE_CACHE.mkdir(parents=True, exist_ok=True)
        completed = subprocess.run(
            ["npm", "install", "--prefix", str(AXE_CACHE), "--no-save", "--no-audit",
             "--no-fund", "--ignore-scripts", f"axe-core@{AXE_MAJOR}"],
            capture_output=True, text=True, timeout=300, check=False)
        if completed.returncode != 0 or not AXE_FILE.is_file():
            raise RuntimeError(f"npm install axe-core@{AXE_MAJOR} failed "
                               f"(status {completed.returncode}):\n{completed.stdout}\n"
                               f"{completed.stderr}")
    return AXE_FILE.read_text()


def trust_store(home: Path, ca_file: Path) -> None:
    """Make ``home/.pki/nssdb``, the NSS database Chromium on Linux reads, trusting
    ``ca_file`` as a certificate authority for TLS servers (and nothing else)."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True, exist_ok=True)
    for argv in (["-N", "--empty-password"],
                 ["-A", "-n", "authsvc test CA", "-t", "C,,", "-i", str(ca_file)]):
        subprocess.run([CERTUTIL, "-d", f"sql:{nssdb}", *argv], check=True,
                       capture_output=True, timeout=30)


@dataclass
class Browser:
    """One headless Chromium (its own profile and HOME) pointed at one authsvc site."""

    driver: WebDriver
    base_url: str
    home: Path
    label: str

    # -- navigation -----------------------------------------------------------------------
    def open(self, path: str) -> None:
        """Load ``base_url + path`` and fail on a certificate interstitial."""
        self.driver.get(self.base_url + path)
        self.assert_no_tls_error()

    def assert_no_tls_error(self) -> None:
        title = self.driver.title
        assert "Privacy error" not in title and "not private" not in self.text(), (
            f"Chromium refused the certificate of {self.driver.current_url}: {title}")

    def path(self) -> str:
        """The current URL's path and query, without the site's origin."""
        url = self.driver.current_url
        return url[len(self.base_url):] if url.startswith(self.base_url) else url

    def text(self) -> str:
        """The visible text of the page."""
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def wait_until(self, check: Any, what: str, timeout: float = WAIT) -> Any:
        try:
            return WebDriverWait(self.driver, timeout).until(lambda _driver: check())
        except TimeoutException:
            raise AssertionError(f"timed out waiting for {what}; at {self.driver.current_url}"
                                 f":\n{self.text()[:2000]}") from None

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def button(self, label: str) -> WebElement:
        """The button (``<button>`` or submit ``<input>``) whose text is ``label``."""
        for element in self.find_all("button, input[type=submit]"):
            shown = element.text or element.get_attribute("value") or ""
            if shown.strip() == label:
                return element
        raise AssertionError(f"no button {label!r} on {self.driver.current_url}:\n"
                             f"{self.text()[:2000]}")

    def link(self, text: str) -> WebElement:
        return self.driver.find_element(By.LINK_TEXT, text)

    def submit(self, label: str) -> None:
        """Click the button ``label`` and wait for the next page to load."""
        self.click(self.button(label), f"the page after clicking {label!r}")

    def click(self, element: WebElement, what: str) -> None:
        """Click ``element`` (a button or link) and wait for the next page to load."""
        old = self.find("html")
        element.click()
        self.wait_until(lambda: _is_stale(old), what)

    # -- signing in and out ---------------------------------------------------------------
    def sign_in(self, creds: Credentials, signin_path: str) -> None:
        """Fill the sign-in form with ``creds`` and submit it."""
        self.open(signin_path)
        self.fill(username=creds.username, password=creds.password)
        self.submit("Sign in")

    def sign_out(self) -> None:
        self.submit("Sign out")

    def fill(self, **fields: str) -> None:
        for name, value in fields.items():
            element = self.find(f"[name={name}]")
            element.clear()
            element.send_keys(value)

    def cookies(self) -> dict[str, dict[str, Any]]:
        """The cookies the browser holds for the site, by name, with their flags."""
        return {cookie["name"]: cookie for cookie in self.driver.get_cookies()}

    # -- artefacts and checks -------------------------------------------------------------
    def size(self, width_height: tuple[int, int]) -> None:
        self.driver.set_window_size(*width_height)

    def screenshot(self, name: str) -> Path:
        """Save the viewport as ``SCREENSHOTS/<label>-<name>.png`` and return the path."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.label}-{name}")
        path = SCREENSHOTS / f"{slug}.png"
        self.driver.save_screenshot(str(path))
        return path

    def shoot_both(self, name: str) -> list[Path]:
        """Screenshots of the current page at desktop and at phone width (full page
        height, so nothing below the fold is missed); the window is left at desktop size."""
        paths = []
        for label, (width, height) in (("desktop", DESKTOP), ("phone", PHONE)):
            self.size((width, height))
            full = int(self.driver.execute_script(
                "return Math.max(document.body.scrollHeight,"
                " document.documentElement.scrollHeight)"))
            self.size((width, max(height, min(full + 140, 4000))))
            paths.append(self.screenshot(f"{name}-{label}"))
        self.size(DESKTOP)
        return paths

    def axe(self) -> list[dict[str, Any]]:
        return axe(self.driver)

    def check_page(self, name: str) -> None:
        """Screenshots at both widths, then axe: no serious or critical violation."""
        self.shoot_both(name)
        found = self.axe()
        assert not found, (f"axe found serious/critical violations on {name} "
                           f"({self.driver.current_url}):\n{describe_violations(found)}")


def _is_stale(element: WebElement) -> bool:
    """Whether ``element`` has left the page. While the next page replaces it, chromedriver
    may say so as "Node with given id does not belong to the document" (a plain
    WebDriverException) instead of a stale reference: the same answer."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as e:
        if "does not belong to the document" in (e.msg or ""):
            return True
        raise
    return False


def axe(driver: WebDriver) -> list[dict[str, Any]]:
    """Inject axe-core into the page and run it; return the violations whose impact is
    serious or critical (each with its rule id, help text and the offending nodes)."""
    driver.execute_script(axe_source())
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations), e => done({error: String(e)}));")
    if isinstance(result, dict) and "error" in result:
        raise RuntimeError(f"axe.run failed: {result['error']}")
    return [v for v in result if v.get("impact") in BLOCKING_IMPACTS]


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"- [{violation['impact']}] {violation['id']}: {violation['help']} "
                     f"({violation.get('helpUrl', '')})")
        for node in violation.get("nodes", [])[:5]:
            lines.append(f"    {node.get('target')}: {node.get('failureSummary', '')}"[:400])
    return "\n".join(lines)


def flask_session(value: str) -> dict[str, Any]:
    """The content of a Flask session cookie (signed, not encrypted: readable without the
    key; ``.`` first means zlib-compressed)."""
    payload = value.split(".")[1] if value.startswith(".") else value.split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    if value.startswith("."):
        raw = zlib.decompress(raw)
    content: dict[str, Any] = json.loads(raw)
    return content


def _chromium_environment(home: Path) -> dict[str, str]:
    """chromedriver's (and so Chromium's) environment: a private HOME and cache, no proxy,
    and selenium-manager held offline in case anything asked it."""
    keep = ("PATH", "LANG", "TZ")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                "XDG_CACHE_HOME": str(home / ".cache"), "SE_OFFLINE": "true"})
    return env


@contextmanager
def chromium(base_url: str, ca_file: Path | None, label: str = "browser",
             log_dir: Path | None = None) -> Iterator[Browser]:
    """A headless Chromium trusting ``ca_file`` (None: trusting nothing of ours), stopped
    when the block ends."""
    os.environ["SE_OFFLINE"] = "true"  # selenium: never download a driver or a browser
    home = Path(tempfile.mkdtemp(prefix=f"chromium-{label}-"))
    try:
        if ca_file is not None:
            trust_store(home, ca_file)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", f"--user-data-dir={home / 'profile'}",
                         f"--window-size={DESKTOP[0]},{DESKTOP[1]}", "--no-first-run",
                         "--disable-background-networking", "--disable-sync",
                         "--disable-component-update", "--disable-default-apps",
                         "--lang=en-US"):
            options.add_argument(argument)
        log_path = (log_dir or home) / f"chromedriver-{label}.log"
        service = Service(executable_path=CHROMEDRIVER, log_output=str(log_path),
                          env=_chromium_environment(home))
        driver = webdriver.Chrome(service=service, options=options)
        try:
            driver.set_page_load_timeout(30)
            driver.set_script_timeout(30)
            yield Browser(driver, base_url.rstrip("/"), home, label)
        finally:
            driver.quit()  # stops chromedriver (by its PID) and the Chromium it started
    finally:
        shutil.rmtree(home, ignore_errors=True)


def wait_until(check: Any, what: str, timeout: float = WAIT) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last result: {result!r}")
        time.sleep(0.2)


def header_map(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}

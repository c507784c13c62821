"""``authsvc doctor``'s checks of a running set-up, end to end, over HTTPS: the registry's
challenge, the realm as clients reach it, a token authsvc signs for itself, the registry's
configuration file (when given), the clocks, the notifications. Each check is observed here
and judged by a pure verdict function beside it; nothing here knows Flask or the database
(``Setup`` hands in what authsvc knows as values and callables).
"""

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests
from cryptography import x509

from authsvc.core.registry_events import EVENTS_MEDIA_TYPE
from authsvc.core.scopes import Scope
from authsvc.diagnosis import registry_file
from authsvc.diagnosis.challenge import challenge_verdict, parse_challenge, token_verdict
from authsvc.diagnosis.clock import clock_verdict, registry_time
from authsvc.diagnosis.findings import Finding, Status, fail, ok, skip
from authsvc.diagnosis.notifications import EventProbe, not_configured, notification_verdict
from authsvc.diagnosis.trust import client_context, host_port, probe, tls_verdict, write_bundle
from authsvc.errors import CertificateError
from authsvc.registry.client import ACCEPT

#: (service, scopes) -> a token authsvc signed for itself holding exactly those scopes.
Mint = Callable[[str, Sequence[Scope]], str]


@dataclass(frozen=True)
class Notifications:
    """What the notification check needs: the events URL and current secret, the tags authsvc
    knows (``(name, tag)``, most recently pushed first) and when the last event arrived."""

    url: str
    secret: str
    known_tags: Callable[[], list[tuple[str, str]]]
    latest_event: Callable[[], datetime | None]
    wait: float = 10.0

    def __repr__(self) -> str:
        return f"Notifications(url={self.url!r}, secret='***')"


@dataclass(frozen=True)
class Setup:
    """What authsvc expects of the set-up, from its settings and certificates."""

    registry_url: str
    registry_ca: Path | None
    realm: str
    services: tuple[str, ...]
    issuer: str
    kid: str
    client_cas: tuple[Path, ...]
    mint: Mint
    active_certificate: x509.Certificate
    next_certificate: x509.Certificate | None = None
    registry_config: Path | None = None
    notifications: Notifications | None = None
    notifications_off: str = "not configured"
    timeout: float = 10.0


def _session(verify: str | bool) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy, .netrc or CA bundle from the environment
    session.verify = verify
    return session


def _trusted(setup: Setup) -> str:
    return " and ".join(["the system's CAs", *(str(p) for p in setup.client_cas)])


def check_realm(setup: Setup, service: str, bundle: Path) -> Finding:
    """The realm answers a token request over HTTPS that clients trust, by its URL's name."""
    problem = probe(setup.realm, client_context(setup.client_cas), setup.timeout)
    if problem is not None:
        return tls_verdict("realm", setup.realm, problem, trusted=_trusted(setup))
    host, _ = host_port(setup.realm)
    try:
        answer = _session(str(bundle)).get(setup.realm, params={"service": service},
                                           timeout=setup.timeout, allow_redirects=False)
        token = answer.json().get("token") if answer.status_code == 200 else None
    except (requests.RequestException, ValueError, AttributeError) as e:
        return fail("realm", f"{setup.realm} did not answer a token request ({type(e).__name__})"
                    ": is `authsvc serve` running there?")
    if not isinstance(token, str):
        return fail("realm", f"{setup.realm} answered {answer.status_code} without a token to an "
                    "anonymous token request: is PUBLIC_URL the address of authsvc?")
    return ok("realm", f"{setup.realm} answers with a token over HTTPS that clients trusting "
              f"{_trusted(setup)} accept for the name {host}")


def _config_findings(setup: Setup) -> list[Finding]:
    """The registry configuration file's auth.token section and its bundle (when given)."""
    path = setup.registry_config
    if path is None:
        return []
    try:
        section = registry_file.read_registry_config(path)
    except CertificateError as e:
        return [fail("registry config", f"{e.message}: give the file the registry runs with")]
    found = [registry_file.config_verdict(section, file=path, realm=setup.realm,
                                          services=setup.services, issuer=setup.issuer)]
    if not section.rootcertbundle:
        return found
    bundle = Path(section.rootcertbundle)
    if not bundle.is_absolute():
        bundle = path.parent / bundle
    try:
        held = registry_file.bundle_certificates(bundle)
    except CertificateError as e:
        return [*found, fail("rootcertbundle", f"{e.message}: point auth.token.rootcertbundle "
                             "at authsvc's rootcertbundle.pem")]
    return [*found, registry_file.bundle_verdict(
        bundle, held, active=setup.active_certificate, next_key=setup.next_certificate,
        kid=setup.kid)]


def _refusal_hint(challenge: Finding, config: list[Finding]) -> str:
    """Why the registry refused authsvc's token, as far as its challenge and configuration
    file tell."""
    failed = [f for f in [challenge, *config] if f.status is Status.FAIL]
    if failed:
        return f"see the {failed[0].check} line"
    if not config:
        return ""
    return ("the registry's configuration file and bundle are right, so the running registry "
            "read older ones (after a key rotation): restart the registry; or its clock is off")


def check_token(setup: Setup, session: requests.Session, service: str, challenge: Finding,
                config: list[Finding]) -> Finding:
    """The registry accepts a catalog token authsvc signs for itself."""
    token = setup.mint(service, [Scope("registry", "catalog", frozenset({"*"}))])
    url = f"{setup.registry_url}/v2/_catalog"
    try:
        answer = session.get(url, params={"n": "1"}, timeout=setup.timeout,
                             allow_redirects=False, headers={"Authorization": f"Bearer {token}"})
    except requests.RequestException as e:
        return fail("token", f"{url} could not be asked with a token ({type(e).__name__})")
    return token_verdict(answer.status_code, answer.headers.get("WWW-Authenticate"),
                         url=setup.registry_url, issuer=setup.issuer, kid=setup.kid,
                         hint=_refusal_hint(challenge, config))


def _pull_for_event(setup: Setup, session: requests.Session, service: str,
                    tags: list[tuple[str, str]]) -> tuple[str, int]:
    """Pull the first manifest of ``tags`` the registry serves; (``name:tag``, status)."""
    pulled, status = "", 0
    for name, tag in tags[:3]:
        token = setup.mint(service, [Scope("repository", name, frozenset({"pull"}))])
        pulled = f"{name}:{tag}"
        try:
            status = session.get(f"{setup.registry_url}/v2/{name}/manifests/{tag}",
                                 timeout=setup.timeout, allow_redirects=False,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Accept": ACCEPT}).status_code
        except requests.RequestException:
            status = 0
        if status == 200:
            break
    return pulled, status


def check_notifications(setup: Setup, session: requests.Session, service: str,
                        bundle: Path) -> Finding:
    """authsvc's events endpoint takes the secret, and a pull's event arrives."""
    events = setup.notifications
    if events is None:
        return not_configured(setup.notifications_off)
    try:
        answer = _session(str(bundle)).post(
            events.url, data=b'{"events": []}', timeout=setup.timeout, allow_redirects=False,
            headers={"Authorization": f"Bearer {events.secret}",
                     "Content-Type": EVENTS_MEDIA_TYPE})
        status: int | None = answer.status_code
        error = ""
    except requests.RequestException as e:
        problem = probe(events.url, client_context(setup.client_cas), setup.timeout)
        if problem is not None:
            return tls_verdict("notifications", events.url, problem, trusted=_trusted(setup))
        status, error = None, type(e).__name__
    if status != 200:
        return notification_verdict(EventProbe(events.url, status, error))
    before = events.latest_event()
    pulled, pull_status = _pull_for_event(setup, session, service, events.known_tags())
    arrived: float | None = None
    started = time.monotonic()
    while pull_status == 200 and time.monotonic() - started < events.wait:
        latest = events.latest_event()
        if latest is not None and (before is None or latest > before):
            arrived = time.monotonic() - started
            break
        time.sleep(0.2)
    return notification_verdict(EventProbe(events.url, 200, "", pulled, pull_status, arrived,
                                           events.wait))


def run_checks(setup: Setup) -> list[Finding]:
    """Every check, in the order they are printed."""
    verify: str | bool = str(setup.registry_ca) if setup.registry_ca is not None else True
    session = _session(verify)
    url = setup.registry_url
    with tempfile.TemporaryDirectory(prefix="authsvc-doctor-") as folder:
        bundle = write_bundle(setup.client_cas, Path(folder) / "clients.pem")
        try:
            before = datetime.now(UTC)
            answer = session.get(f"{url}/v2/", timeout=setup.timeout, allow_redirects=False)
            after = datetime.now(UTC)
        except requests.RequestException:
            cas = [setup.registry_ca] if setup.registry_ca is not None else []
            problem = probe(url, client_context(cas), setup.timeout)
            trusted = " and ".join(["the system's CAs", *(f"{p} (REGISTRY_CA)" for p in cas)])
            first = (tls_verdict("registry", url, problem, trusted=trusted,
                                 server="the registry")
                     if problem is not None
                     else fail("registry", f"{url}/v2/ did not answer: is the registry "
                               "running there (REGISTRY_URL, --registry)?"))
            service = setup.services[0]
            later = "not checked: the registry cannot be reached"
            return [first, check_realm(setup, service, bundle), skip("token", later),
                    skip("clock", later), skip("notifications", later)]
        header = answer.headers.get("WWW-Authenticate")
        challenge = parse_challenge(header)
        asked = challenge.params.get("service", "") if challenge is not None else ""
        service = asked if asked in setup.services else setup.services[0]
        asks = challenge_verdict(answer.status_code, header, url=url, realm=setup.realm,
                                 services=setup.services)
        findings = [asks, check_realm(setup, service, bundle)]
        config = _config_findings(setup)
        findings += [check_token(setup, session, service, asks, config), *config]
        findings.append(clock_verdict(registry_time(answer.headers.get("Date")),
                                      before + (after - before) / 2))
        findings.append(check_notifications(setup, session, service, bundle))
    return findings

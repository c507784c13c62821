"""The verdicts of ``authsvc doctor``'s checks (``authsvc.diagnosis``), from what each check
observes: the registry's challenges, TLS failures, the registry's configuration file and
bundle, clocks, notifications. The checks against a real registry are in
``tests/e2e/test_doctor.py``."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from flask.testing import FlaskCliRunner

from authsvc.cli import cli
from authsvc.diagnosis import Status, passed
from authsvc.diagnosis.challenge import (
    REGISTRY_LEEWAY,
    challenge_verdict,
    parse_challenge,
    token_verdict,
)
from authsvc.diagnosis.clock import clock_verdict, registry_time
from authsvc.diagnosis.findings import Finding, fail, ok, skip, warn
from authsvc.diagnosis.notifications import EventProbe, notification_verdict
from authsvc.diagnosis.registry_file import (
    TokenSection,
    bundle_verdict,
    config_verdict,
    read_token_section,
)
from authsvc.diagnosis.trust import TlsProblem, tls_verdict
from authsvc.pki.certs import CertPaths, generate_key, make_signing_cert
from authsvc.pki.registry_config import registry_config

URL = "https://registry.example.com:5000"
REALM = "https://registry.example.com:5001/token"
SERVICES = ("registry",)
KID = "PYYO:TEWU:V7JH:26JV:AQTZ:LJC3:SXVJ:XGHA:34F2:2LAQ:ZRMK:Z7Q6"


def challenge(realm: str = REALM, service: str = "registry", extra: str = "") -> str:
    return f'Bearer realm="{realm}",service="{service}"{extra}'


# -- the challenge -------------------------------------------------------------------------

def test_a_challenge_is_read_with_quoted_and_bare_parameters() -> None:
    found = parse_challenge(r'Bearer realm="https://a/token",service="reg\"x, y",'
                            'scope="repository:a/b:pull,push",error=invalid_token')
    assert found is not None and found.scheme == "bearer"
    assert found.params == {"realm": "https://a/token", "service": 'reg"x, y',
                            "scope": "repository:a/b:pull,push", "error": "invalid_token"}
    assert parse_challenge(None) is None and parse_challenge("  ") is None
    assert parse_challenge('Basic realm="Registry Realm"') is not None


@pytest.mark.parametrize(("status", "header", "status_out", "words"), [
    (401, challenge(), Status.OK, f"sends clients to {REALM} for tokens for the service "
                                  "'registry'"),
    (200, None, Status.FAIL, "lets anyone in"),
    (404, None, Status.FAIL, "answered 404 without a token"),
    (401, None, Status.FAIL, "not 401 with a Bearer challenge"),
    (401, 'Basic realm="Registry Realm"', Status.FAIL, "asks for Basic authentication"),
    (401, challenge(realm="https://old.example.com/token"), Status.FAIL,
     f"set auth.token.realm to {REALM}"),
    (401, challenge(service="elsewhere"), Status.FAIL,
     "names its service 'elsewhere', for which authsvc issues no token"),
])
def test_the_registry_must_send_clients_to_authsvc(status: int, header: str | None,
                                                   status_out: Status, words: str) -> None:
    found = challenge_verdict(status, header, url=URL, realm=REALM, services=SERVICES)
    assert found.check == "registry" and found.status is status_out
    assert words in found.sentence


def test_any_of_the_services_authsvc_serves_will_do() -> None:
    found = challenge_verdict(401, challenge(service="mirror"), url=URL, realm=REALM,
                              services=("registry", "mirror"))
    assert found.status is Status.OK


# -- the token -----------------------------------------------------------------------------

def test_an_accepted_token_proves_issuer_and_bundle() -> None:
    found = token_verdict(200, None, url=URL, issuer="authsvc", kid=KID)
    assert found.status is Status.OK
    assert "expects this issuer and trusts the active signing certificate" in found.sentence


def test_a_refused_token_names_every_cause_the_registry_keeps_to_its_log() -> None:
    header = challenge(extra=',scope="registry:catalog:*",error="invalid_token"')
    found = token_verdict(401, header, url=URL, issuer="authsvc", kid=KID)
    assert found.status is Status.FAIL
    for cause in ("its auth.token.issuer is not 'authsvc'",
                  f"lacks the active signing certificate (key {KID}",
                  f"more than {REGISTRY_LEEWAY} s off", "token signed by untrusted key"):
        assert cause in found.sentence
    narrowed = token_verdict(401, header, url=URL, issuer="authsvc", kid=KID,
                             hint="see the rootcertbundle line")
    assert narrowed.sentence.endswith("(invalid_token): see the rootcertbundle line")


@pytest.mark.parametrize(("status", "header", "words"), [
    (401, challenge(), "answered 401 to a token authsvc signed (no error given)"),
    (403, None, "answered 403"),
    (500, None, "answered 500"),
])
def test_other_refusals_fail_too(status: int, header: str | None, words: str) -> None:
    found = token_verdict(status, header, url=URL, issuer="authsvc", kid=KID)
    assert found.status is Status.FAIL and words in found.sentence


# -- TLS -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("problem", "words"), [
    (TlsProblem("unreachable", "Connection refused"),
     "registry.example.com:5001 cannot be reached (Connection refused)"),
    (TlsProblem("not-tls", "WRONG_VERSION_NUMBER"), "must serve HTTPS"),
    (TlsProblem("untrusted", "self-signed certificate", ("registry.example.com",), "Acme CA"),
     "(issued by Acme CA for registry.example.com) is not signed by a CA clients trust "
     "(the system's CAs and certs/ca.pem)"),
    (TlsProblem("wrong-name", "Hostname mismatch", ("localhost", "127.0.0.1"), "authsvc CA"),
     "is for localhost, 127.0.0.1, not registry.example.com, the name in the URL"),
    (TlsProblem("expired", "certificate has expired"), "outside its validity"),
])
def test_a_tls_failure_says_what_clients_would_see(problem: TlsProblem, words: str) -> None:
    """(the probe that observes these runs against real servers in the e2e tests)"""
    found = tls_verdict("realm", REALM, problem, trusted="the system's CAs and certs/ca.pem")
    assert found.status is Status.FAIL and words in found.sentence


# -- the registry's configuration file ------------------------------------------------------

def printed_config(tmp_path: Path, **changes: str) -> str:
    text = registry_config(addr="0.0.0.0:5000", realm=REALM, service="registry",
                           issuer="authsvc", certs=CertPaths(tmp_path / "certs"),
                           storage_dir=tmp_path / "storage",
                           notifications=("https://a/api/v1/registry/events", "s" * 40))
    for old, new in changes.items():
        text = text.replace(old, new)
    return text


def test_the_token_section_is_read_from_the_printed_configuration(tmp_path: Path) -> None:
    section = read_token_section(printed_config(tmp_path))
    assert section == TokenSection(REALM, "registry", "authsvc",
                                   str(tmp_path / "certs" / "rootcertbundle.pem"))


def test_quotes_comments_and_other_sections_are_understood() -> None:
    text = """\
# a hand-written configuration
token:
  issuer: not-this-one
auth:
  htpasswd: {}
  token:   # ours
    realm: https://r.example/token   # the realm
    service: 'it''s'
    issuer: "auth\\"svc"
    rootcertbundle: /etc/registry/bundle.pem
  other:
    issuer: nor-this-one
notifications:
  endpoints:
    - name: x
"""
    assert read_token_section(text) == TokenSection("https://r.example/token", "it's",
                                                    'auth"svc', "/etc/registry/bundle.pem")


@pytest.mark.parametrize(("section", "status", "words"), [
    (TokenSection(REALM, "registry", "authsvc", "b.pem"), Status.OK, "names authsvc's realm"),
    (TokenSection(), Status.FAIL, "has no auth.token section"),
    (TokenSection(REALM, "registry", "other", "b.pem"), Status.FAIL,
     "expects tokens from the issuer 'other', but authsvc signs as 'authsvc'"),
    (TokenSection(REALM, "mirror", "authsvc", "b.pem"), Status.FAIL,
     "names the service 'mirror', not one of authsvc's SERVICES (registry)"),
    (TokenSection("https://old/token", "registry", "authsvc", "b.pem"), Status.FAIL,
     "sends clients to 'https://old/token'"),
])
def test_the_configuration_file_must_match_authsvcs_settings(
        section: TokenSection, status: Status, words: str) -> None:
    found = config_verdict(section, file=Path("config.yml"), realm=REALM, services=SERVICES,
                           issuer="authsvc")
    assert found.check == "registry config" and found.status is status
    assert words in found.sentence


def test_the_bundle_must_hold_the_active_certificate_and_should_hold_the_next() -> None:
    now = datetime.now(UTC)
    active, upcoming, old = (make_signing_cert(generate_key(), now) for _ in range(3))
    bundle = Path("rootcertbundle.pem")

    def verdict(held: list[x509.Certificate],
                next_key: x509.Certificate | None = None) -> Finding:
        return bundle_verdict(bundle, held, active=active, next_key=next_key, kid=KID)

    assert verdict([old, active]).status is Status.OK
    missing = verdict([old])
    assert missing.status is Status.FAIL
    assert f"does not hold authsvc's active signing certificate (key {KID})" in missing.sentence
    waiting = verdict([active], upcoming)
    assert waiting.status is Status.WARN and "before `authsvc certs rotate --activate`" in \
        waiting.sentence
    assert verdict([active, upcoming], upcoming).status is Status.OK


# -- clocks ----------------------------------------------------------------------------------

NOW = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("skew", "status", "words"), [
    (0, Status.OK, "within 1 s of this host's (it allows 60 s"),
    (-12, Status.OK, "within 12 s"),
    (45, Status.WARN, "45 s ahead of this host's, within the 60 s"),
    (-61, Status.FAIL, "61 s behind this host's, more than the 60 s it allows"),
])
def test_clocks_must_agree_within_the_registrys_leeway(skew: int, status: Status,
                                                       words: str) -> None:
    found = clock_verdict(NOW + timedelta(seconds=skew), NOW)
    assert found.status is status and words in found.sentence


def test_the_registrys_clock_comes_from_its_date_header() -> None:
    assert registry_time("Thu, 03 Dec 2026 10:00:00 GMT") == NOW
    assert registry_time(None) is None and registry_time("yesterday") is None
    assert clock_verdict(None, NOW).status is Status.WARN


# -- notifications --------------------------------------------------------------------------

EVENTS = "https://registry.example.com:5001/api/v1/registry/events"


@pytest.mark.parametrize(("probe", "status", "words"), [
    (EventProbe(EVENTS, 200, "", "alice/web:v1", 200, 0.4, 10), Status.OK,
     "delivered the event of a pull of alice/web:v1"),
    (EventProbe(EVENTS, 200), Status.OK,
     "shows only after the next push (no image is recorded yet)"),
    (EventProbe(EVENTS, 200, "", "alice/web:v1", 404), Status.OK,
     "(pulling alice/web:v1 answered 404)"),
    (EventProbe(EVENTS, 200, "", "alice/web:v1", 200, None, 10), Status.FAIL,
     "did not deliver the event of a pull of alice/web:v1 within 10 s"),
    (EventProbe(EVENTS, None, "ConnectionError"), Status.FAIL, "cannot be reached"),
    (EventProbe(EVENTS, 401), Status.FAIL, "refused the current notification secret"),
    (EventProbe(EVENTS, 503), Status.FAIL, "answered 503"),
    (EventProbe(EVENTS, 404), Status.FAIL, "answered 404 to an empty envelope"),
])
def test_notifications_verdicts(probe: EventProbe, status: Status, words: str) -> None:
    found = notification_verdict(probe)
    assert found.check == "notifications" and found.status is status
    assert words in found.sentence


# -- findings and the command ------------------------------------------------------------

def test_warnings_and_skipped_checks_pass_failures_do_not() -> None:
    assert passed([ok("a", "x"), warn("b", "y"), skip("c", "z")])
    assert not passed([ok("a", "x"), fail("b", "y")])
    assert fail("token", "refused").line == "FAIL  token: refused"
    assert ok("clock", "fine").line == "ok    clock: fine"


def test_doctor_without_a_registry_url_fails_in_one_line(runner: FlaskCliRunner) -> None:
    result = runner.invoke(cli, ["doctor"])
    assert result.exit_code == 1
    assert result.output.startswith("FAIL  registry: REGISTRY_URL is not set and no "
                                    "--registry was given")
    assert result.output.count("\n") == 1

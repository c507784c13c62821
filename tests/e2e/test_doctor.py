"""``authsvc doctor`` against the real docker-registry and ``authsvc serve``.

The good set-up (the catalog fixtures: the registry configured as `authsvc registry-config`
prints it, notifications included) passes every check, before any push (delivery cannot be
seen yet) and after one (the event of the doctor's own pull arrives). Then one thing at a
time is broken, each in a registry of its own started from the printed configuration with
one change (they start in about a second): a wrong service, a wrong issuer, a realm that
cannot be reached, a realm whose certificate clients do not trust or is for another name, and
last, a key rotation the registries were not restarted for. Each gives exit status 1 and the
failing line that names it.
"""

from __future__ import annotations

import contextlib
import http.server
import re
import shutil
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from authsvc.pki.certs import (
    cert_pem,
    generate_key,
    make_ca,
    make_server_cert,
    write_private_key,
)

from .catalog_fixtures import CatalogAuthsvc, catalog_authsvc, catalog_registry  # noqa: F401
from .clients import AuthsvcCli, Credentials, Result, Skopeo, expect_success
from .conftest import LOOPBACK, STARTUP_TIMEOUT, _tracked
from .processes import free_port, https_status, start_service, wait_for
from .world import ImageFactory, Registry

pytestmark = pytest.mark.e2e

CHECKS = ("registry", "realm", "token", "registry config", "rootcertbundle", "clock",
          "notifications")


def lines(result: Result) -> dict[str, str]:
    """Check name → ``STATUS  sentence`` of each line the doctor printed."""
    found = {}
    for line in result.stdout.splitlines():
        match = re.fullmatch(r"(ok|WARN|FAIL|skip)\s+([a-z ]+?): (.*)", line)
        assert match is not None, f"not a check line: {line!r}\n{result.describe()}"
        found[match.group(2)] = f"{match.group(1)}  {match.group(3)}"
    return found


def doctor(authsvc: CatalogAuthsvc, *args: str, public_url: str | None = None) -> Result:
    env = dict(authsvc.env)
    if public_url is not None:
        env["AUTHSVC_PUBLIC_URL"] = public_url
    return AuthsvcCli(authsvc.cli.executable, env, authsvc.cli.cwd).run("doctor", *args)


def failing(result: Result) -> dict[str, str]:
    assert result.returncode == 1, result.describe()
    return {name: line for name, line in lines(result).items() if line.startswith("FAIL")}


@contextlib.contextmanager
def registry_with(request: pytest.FixtureRequest, good: Registry, workdir: Path,
                  *changes: tuple[str, str]) -> Iterator[str]:
    """A docker-registry started from the good configuration with ``changes`` (old, new text)
    on a port of its own and empty storage; yields its URL."""
    port = free_port()
    text = good.config_path.read_text().replace(f'"{good.address}"', f'"{LOOPBACK}:{port}"')
    text = re.sub(r'rootdirectory: ".*"', f'rootdirectory: "{workdir / "storage"}"', text)
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.yml"
    config.touch(mode=0o600)
    config.write_text(text)
    binary = shutil.which("docker-registry")
    assert binary is not None
    certs = re.search(r'certificate: "(.*)/registry.pem"', text)
    assert certs is not None
    ca_file = Path(certs.group(1)) / "ca.pem"  # the registry trusts authsvc's CA to post events
    service = start_service("docker-registry", [binary, "serve", str(config)],
                            {"SSL_CERT_FILE": str(ca_file)}, workdir / "registry.log", workdir)
    with _tracked(request.config, service):
        wait_for(service, lambda: https_status(LOOPBACK, port, "/v2/", ca_file) == 401,
                 "answering /v2/ with 401", STARTUP_TIMEOUT)
        yield f"https://{LOOPBACK}:{port}"


@contextlib.contextmanager
def tls_server(port: int, cert: Path, key: Path) -> Iterator[None]:
    """An HTTPS server on the loopback ``port`` serving ``cert``."""
    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((LOOPBACK, port), Quiet)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def server_certificate(folder: Path, host: str, ca_pem: Path | None, ca_key_pem: Path | None
                       ) -> tuple[Path, Path]:
    """A certificate for ``host`` signed by the CA given (a fresh CA when None)."""
    now = datetime.now(UTC)
    if ca_pem is None or ca_key_pem is None:
        ca_key = generate_key()
        ca = make_ca(ca_key, now)
    else:
        ca = x509.load_pem_x509_certificate(ca_pem.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_pem.read_bytes(), password=None)
        ca_key = loaded  # type: ignore[assignment]
    key = generate_key()
    folder.mkdir(parents=True, exist_ok=True)
    write_private_key(folder / "key.pem", key)
    (folder / "cert.pem").write_bytes(cert_pem(make_server_cert(key, "realm", [host], ca,
                                                                ca_key, now)))
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture(scope="module")
def alice(authsvc: CatalogAuthsvc) -> Credentials:
    creds = Credentials("alice", "alice's long password")
    authsvc.cli.add_user(creds)
    return creds


def test_the_good_set_up_passes_every_check(authsvc: CatalogAuthsvc, registry: Registry,
                                            skopeo: Skopeo, make_image: ImageFactory,
                                            alice: Credentials) -> None:
    before_push = lines(expect_success(doctor(authsvc, "--registry-config",
                                              str(registry.config_path))))
    assert tuple(before_push) == CHECKS
    assert all(line.startswith("ok") for line in before_push.values()), before_push
    assert "shows only after the next push" in before_push["notifications"]
    assert f"sends clients to {authsvc.url}/token" in before_push["registry"]

    expect_success(skopeo.push(make_image("alice/doctor"), registry.ref("alice/doctor", "v1"),
                               alice))
    after_push = lines(expect_success(doctor(authsvc)))  # REGISTRY_URL, no config file
    assert tuple(after_push) == ("registry", "realm", "token", "clock", "notifications")
    assert all(line.startswith("ok") for line in after_push.values()), after_push
    assert "delivered the event of a pull of alice/doctor:v1" in after_push["notifications"]
    # the doctor's pull is nobody's pull
    answer = authsvc.get("/repositories/alice/doctor", alice)
    assert answer.status_code == 200 and answer.json()["pull_count"] == 0, answer.text


def test_a_registry_that_does_not_answer_fails_and_skips_what_needs_it(
        authsvc: CatalogAuthsvc, registry: Registry) -> None:
    port = free_port()
    found = lines(doctor(authsvc, "--registry", f"https://{LOOPBACK}:{port}"))
    assert found["registry"].startswith(f"FAIL  127.0.0.1:{port} cannot be reached")
    assert "start the registry there" in found["registry"]
    assert found["realm"].startswith("ok")
    assert all(found[name].startswith("skip") for name in ("token", "clock", "notifications"))


def test_a_wrong_service_fails_the_registry_check(request: pytest.FixtureRequest,
                                                  authsvc: CatalogAuthsvc, registry: Registry,
                                                  tmp_path: Path) -> None:
    with registry_with(request, registry, tmp_path,
                       ('service: "registry"', 'service: "elsewhere"')) as url:
        failed = failing(doctor(authsvc, "--registry", url))
    assert "FAIL  the registry names its service 'elsewhere'" in failed["registry"]
    assert "set auth.token.service to 'registry'" in failed["registry"]
    # authsvc's token names its own service, which that registry does not accept
    assert list(failed) == ["registry", "token"]
    assert failed["token"].endswith("(invalid_token): see the registry line")


def test_a_wrong_issuer_fails_the_token_check(request: pytest.FixtureRequest,
                                              authsvc: CatalogAuthsvc, registry: Registry,
                                              tmp_path: Path) -> None:
    with registry_with(request, registry, tmp_path,
                       ('issuer: "authsvc"', 'issuer: "someone-else"')) as url:
        alone = failing(doctor(authsvc, "--registry", url))
        with_file = failing(doctor(authsvc, "--registry", url, "--registry-config",
                                   str(tmp_path / "config.yml")))
    assert list(alone) == ["token"]
    assert "refused a token authsvc signed for itself (invalid_token)" in alone["token"]
    assert "its auth.token.issuer is not 'authsvc'" in alone["token"]
    assert list(with_file) == ["token", "registry config"]
    assert "expects tokens from the issuer 'someone-else'" in with_file["registry config"]
    assert "see the registry config line" in with_file["token"]


def test_a_realm_clients_cannot_reach_or_trust_fails_the_realm_check(
        request: pytest.FixtureRequest, authsvc: CatalogAuthsvc, registry: Registry,
        tmp_path: Path) -> None:
    """The registry and PUBLIC_URL agree on a realm at a port where, in turn, nothing
    listens, a server whose certificate comes from a CA clients do not know, and one whose
    certificate authsvc's CA issued for another name."""
    port = free_port()
    realm_url = f"https://{LOOPBACK}:{port}"
    untrusted = server_certificate(tmp_path / "untrusted", LOOPBACK, None, None)
    other_name = server_certificate(tmp_path / "other-name", "other.example",
                                    authsvc.ca_file, authsvc.certs_dir / "ca-key.pem")
    with registry_with(request, registry, tmp_path / "registry",
                       (f'realm: "{authsvc.url}/token"', f'realm: "{realm_url}/token"')) as url:
        failed = failing(doctor(authsvc, "--registry", url, public_url=realm_url))
        assert f"FAIL  127.0.0.1:{port} cannot be reached" in failed.pop("realm")
        assert list(failed) == ["notifications"]  # the same address: authsvc's events URL
        for cert, expected in ((untrusted, "is not signed by a CA clients trust"),
                               (other_name, "is for other.example, not 127.0.0.1, the name")):
            with tls_server(port, *cert):
                failed = failing(doctor(authsvc, "--registry", url, public_url=realm_url))
            assert expected in failed.pop("realm")
            assert list(failed) == ["notifications"]


def test_a_key_rotation_the_registry_missed_fails_the_token_check(
        request: pytest.FixtureRequest, authsvc: CatalogAuthsvc, registry: Registry,
        tmp_path: Path) -> None:
    """Last in this module: it rotates authsvc's signing key."""
    old_bundle = tmp_path / "old-rootcertbundle.pem"
    shutil.copyfile(authsvc.certs_dir / "rootcertbundle.pem", old_bundle)
    live = f'rootcertbundle: "{authsvc.certs_dir / "rootcertbundle.pem"}"'
    with registry_with(request, registry, tmp_path,
                       (live, f'rootcertbundle: "{old_bundle}"')) as url:
        authsvc.cli.ok("certs", "rotate")
        authsvc.cli.ok("certs", "rotate", "--activate")
        copied = failing(doctor(authsvc, "--registry", url, "--registry-config",
                                str(tmp_path / "config.yml")))
    assert list(copied) == ["token", "rootcertbundle"]
    assert "does not hold authsvc's active signing certificate" in copied["rootcertbundle"]
    assert "see the rootcertbundle line" in copied["token"]
    # the registry that reads authsvc's own bundle file was not restarted since the rotation
    live_file = failing(doctor(authsvc, "--registry-config", str(registry.config_path)))
    assert list(live_file) == ["token"]
    assert "the running registry read older ones" in live_file["token"]
    assert "restart the registry" in live_file["token"]

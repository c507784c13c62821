"""HTTPS as ``authsvc serve`` runs it: TLS 1.2 or newer only, HSTS on every response, and no
start with a private key that group or others may read.

The TLS tests start the real ``authsvc serve`` (gunicorn) on a free loopback port with a
temporary instance, and stop it by PID.
"""

import http.client
import os
import socket
import ssl
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e.processes import free_port, https_status, start_service, wait_for
from flask.testing import FlaskClient, FlaskCliRunner

from authsvc import create_app
from authsvc.api import HSTS
from authsvc.certs import CertPaths, bootstrap
from authsvc.cli import cli

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Live:
    port: int
    ca_file: Path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """``authsvc serve`` with one worker on a free loopback port; stopped by PID afterwards."""
    root = tmp_path_factory.mktemp("tls")
    bootstrap(root / "certs", ["localhost", LOOPBACK])
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSVC_")}
    env.update(AUTHSVC_INSTANCE=str(root / "instance"), AUTHSVC_CERTS_DIR=str(root / "certs"),
               AUTHSVC_PUBLIC_URL=f"https://{LOOPBACK}:{port}")
    argv = [sys.executable, "-c", "from authsvc.cli import main; main()", "serve",
            "--host", LOOPBACK, "--port", str(port), "--workers", "1"]
    service = start_service("authsvc serve", argv, env, root / "serve.log", root)
    ca_file = CertPaths(root / "certs").ca
    try:
        wait_for(service, lambda: https_status(LOOPBACK, port, "/", ca_file) is not None,
                 "answering HTTPS", 30)
        yield Live(port, ca_file)
    finally:
        service.stop()
    assert not service.is_running()


def client_context(ca_file: Path, version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers exactly ``version``, old ones included (OpenSSL's security level
    would otherwise refuse TLS 1.0/1.1 on the client side before the server could)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # setting TLSv1/TLSv1_1 warns
        context.minimum_version = version
        context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def handshake(live: Live, version: ssl.TLSVersion) -> str:
    """The TLS version negotiated with the live server; raises ssl.SSLError when refused."""
    context = client_context(live.ca_file, version)
    with socket.create_connection((LOOPBACK, live.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=LOOPBACK) as tls:
            return str(tls.version())


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1],
                         ids=["tls1.0", "tls1.1"])
def test_old_tls_is_refused_by_the_server(live: Live, version: ssl.TLSVersion) -> None:
    with pytest.raises(ssl.SSLError) as refused:
        handshake(live, version)
    # the server's protocol_version alert, not the client failing to offer the version
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused.value


@pytest.mark.parametrize(("version", "name"), [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                                               (ssl.TLSVersion.TLSv1_3, "TLSv1.3")])
def test_tls_1_2_and_1_3_work(live: Live, version: ssl.TLSVersion, name: str) -> None:
    assert handshake(live, version) == name


@pytest.mark.parametrize(("path", "status"), [
    ("/.well-known/jwks.json", 200),
    ("/token?service=registry", 200),
    ("/api/v1/me", 401),
    ("/no-such-page", 404),
])
def test_https_responses_carry_hsts(live: Live, path: str, status: int) -> None:
    context = client_context(live.ca_file, ssl.TLSVersion.TLSv1_2)
    connection = http.client.HTTPSConnection(LOOPBACK, live.port, timeout=5, context=context)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == status
    assert response.getheader("Strict-Transport-Security") == "max-age=31536000"


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/token?service=registry", 200),
    ("GET", "/token?service=registry", 200),
    ("GET", "/api/v1/me", 401),
    ("DELETE", "/token", 405),
    ("GET", "/nowhere", 404),
])
def test_every_response_carries_hsts(client: FlaskClient, method: str, path: str,
                                     status: int) -> None:
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.headers["Strict-Transport-Security"] == HSTS == "max-age=31536000"


# -- private keys ---------------------------------------------------------------------------------

@pytest.fixture
def serve_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FlaskCliRunner:
    """A fresh instance with certificates of its own (modes change here) and no database yet:
    ``serve`` makes it."""
    bootstrap(tmp_path / "certs", ["localhost", LOOPBACK])
    monkeypatch.setenv("AUTHSVC_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("AUTHSVC_CERTS_DIR", str(tmp_path / "certs"))
    return create_app({"TESTING": True}).test_cli_runner()


@pytest.mark.parametrize("attr", ["signing_key", "authsvc_key"])
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_serve_refuses_every_private_key_it_reads_when_others_may(
        serve_runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        attr: str, mode: int) -> None:
    """The private keys authsvc reads are the signing key (tokens) and its HTTPS key
    (gunicorn); the CA key is never read, the registry key only by the registry, and the
    next signing key by ``certs rotate --activate`` (tests/test_rotation.py)."""

    def must_not_serve(self: object) -> None:
        raise AssertionError("serve started with an unsafe key")

    monkeypatch.setattr("authsvc.server.HTTPSServer.run", must_not_serve)
    path = getattr(CertPaths(tmp_path / "certs"), attr)
    path.chmod(mode)
    result = serve_runner.invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 1, result.output
    assert f"Error: {path} is readable by group or others" in result.output
    assert f"chmod 600 {path}" in result.output


def test_serve_starts_with_owner_only_keys(serve_runner: FlaskCliRunner,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    started = []
    monkeypatch.setattr("authsvc.server.HTTPSServer.run", lambda self: started.append(self))
    result = serve_runner.invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 0, result.output
    assert len(started) == 1
    assert started[0].cfg.ssl_context is not None  # TLS 1.2 minimum is set in ssl_context

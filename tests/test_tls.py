"""HTTPS as ``authsvc serve`` runs it: TLS 1.2 or newer only, HSTS on every response, no
start with a private key that group or others may read, a log line per request without
secrets, and no worker left running once the server is stopped.

The live tests start the real ``authsvc serve`` (granian) on a free loopback port with a
temporary instance, and stop it by PID.
"""

import base64
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from e2e.audit_log import MARK
from e2e.processes import Service, free_port, https_status, start_service, wait_for
from flask.testing import FlaskClient, FlaskCliRunner

from authsvc import create_app
from authsvc.cli import cli
from authsvc.config import DEFAULTS
from authsvc.pki.certs import CertPaths, bootstrap
from authsvc.server.__main__ import main as server_main
from authsvc.server.serve import ACCESS_FORMAT
from authsvc.web.api import HSTS

LOOPBACK = "127.0.0.1"
# What the client reports when the server refuses the TLS version with an alert.
SERVER_REFUSED_VERSION = {"SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV1_ALERT_PROTOCOL_VERSION"}
# The line format of authsvc's loggers, in the server and in every worker.
LOG_LINE = re.compile(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] \[\d+\] \[INFO\] ")


@dataclass(frozen=True)
class Live:
    port: int
    ca_file: Path
    service: Service


#: Variables named like request fields in the server's environment (see the test that uses them).
SERVER_ENVIRONMENT_NOISE = {
    "HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"nobody:from-the-environment").decode(),
    "REMOTE_USER": "admin", "QUERY_STRING": "service=registry&scope=repository:x/y:push"}


@contextmanager
def running_server(root: Path, workers: int) -> Iterator[Live]:
    """``authsvc serve`` on a free loopback port, answering HTTPS; stopped by PID afterwards."""
    bootstrap(root / "certs", ["localhost", LOOPBACK])
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSVC_")}
    env.update(AUTHSVC_INSTANCE=str(root / "instance"), AUTHSVC_CERTS_DIR=str(root / "certs"),
               AUTHSVC_PUBLIC_URL=f"https://{LOOPBACK}:{port}", **SERVER_ENVIRONMENT_NOISE)
    argv = [sys.executable, "-c", "from authsvc.cli import main; main()", "serve",
            "--host", LOOPBACK, "--port", str(port), "--workers", str(workers)]
    service = start_service("authsvc serve", argv, env, root / "serve.log", root)
    ca_file = CertPaths(root / "certs").ca
    try:
        wait_for(service, lambda: https_status(LOOPBACK, port, "/", ca_file) is not None,
                 "answering HTTPS", 30)
        yield Live(port, ca_file, service)
    finally:
        service.stop()
    assert not service.is_running()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """``authsvc serve`` with one worker, for the whole module."""
    with running_server(tmp_path_factory.mktemp("tls"), workers=1) as server:
        yield server


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
    # An alert from the server, not the client failing to offer the version. Granian's TLS
    # (rustls) has no TLS 1.0/1.1 and answers their ClientHello with handshake_failure;
    # OpenSSL-based servers answer protocol_version.
    assert refused.value.reason in SERVER_REFUSED_VERSION, refused.value


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


# -- logs -----------------------------------------------------------------------------------------

def log_lines(live: Live, needle: str) -> list[str]:
    """The lines of the server log holding ``needle``, waiting up to 5 s for the first."""
    deadline = time.monotonic() + 5
    while True:
        found = [line for line in live.service.log_tail(10**6).splitlines() if needle in line]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_each_request_is_logged_without_its_secrets(live: Live) -> None:
    """One access line per request, with address, method, path and status, but neither the
    query (POST /token reads its form from there too) nor the Authorization header; the
    audit line comes from the worker in authsvc's log format."""
    credentials = base64.b64encode(b"nobody:query-password").decode()
    context = client_context(live.ca_file, ssl.TLSVersion.TLSv1_2)
    connection = http.client.HTTPSConnection(LOOPBACK, live.port, timeout=5, context=context)
    try:
        connection.request("GET", "/token?service=registry&refresh_token=query-secret",
                           headers={"Authorization": f"Basic {credentials}"})
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == 401
    access = log_lines(live, '"GET /token HTTP/1.1" 401')
    assert len(access) == 1, live.service.log_tail()
    assert re.fullmatch(LOG_LINE.pattern + r'granian\.access: 127\.0\.0\.1 "GET /token '
                        r'HTTP/1\.1" 401 [\d.]+ms', access[0]), access
    refused = [line for line in log_lines(live, MARK) if '"token.refused"' in line]
    assert len(refused) == 1 and LOG_LINE.match(refused[0]), live.service.log_tail()
    log = live.service.log_tail(10**6)
    assert "query-secret" not in log and credentials not in log and "query-password" not in log


def test_the_server_environment_is_not_part_of_requests(live: Live) -> None:
    """Each request's WSGI environ is made from the request alone: variables in the server's
    environment named like request fields must not turn into credentials or parameters."""
    context = client_context(live.ca_file, ssl.TLSVersion.TLSv1_2)
    connection = http.client.HTTPSConnection(LOOPBACK, live.port, timeout=5, context=context)
    try:
        connection.request("GET", "/token?service=registry&scope=repository:a/b:pull")
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 200, body
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["sub"] == ""
    assert claims["access"] == [{"type": "repository", "name": "a/b", "actions": []}]


# -- stopping -------------------------------------------------------------------------------------

def running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL],
                         ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_signal_to_the_server_stops_every_worker(tmp_path: Path, sig: signal.Signals) -> None:
    """Stopping ``authsvc serve`` by its PID stops its workers too; even when it is killed,
    none is left behind to keep serving on the port. A stopping worker first writes the
    audit events it batches (tokens issued)."""
    with running_server(tmp_path, workers=2) as server:
        workers = children(server.service.pid)
        assert len(workers) == 2
        assert https_status(LOOPBACK, server.port, "/token?service=registry",
                            server.ca_file) == 200
        os.kill(server.service.pid, sig)
        server.service.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if running(pid)], server.service.log_tail()
    with closing(sqlite3.connect(tmp_path / "instance" / "authsvc.db")) as database:
        issued = database.execute(
            "SELECT count(*) FROM audit_events WHERE action = 'token.issued'").fetchone()
    assert issued == (1,)


# -- private keys ---------------------------------------------------------------------------------

@pytest.fixture
def serve_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FlaskCliRunner:
    """A fresh instance with certificates of its own (modes change here) and no database yet:
    ``serve`` makes it."""
    bootstrap(tmp_path / "certs", ["localhost", LOOPBACK])
    monkeypatch.setenv("AUTHSVC_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("AUTHSVC_CERTS_DIR", str(tmp_path / "certs"))

    def run_here(executable: str, argv: list[str], env: dict[str, str]) -> None:
        """What the process ``serve`` becomes would do, in this one (not replacing pytest)."""
        assert argv[1:4] == ["-P", "-m", "authsvc.server"]
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        raise SystemExit(server_main(argv[4:]))

    monkeypatch.setattr("authsvc.server.serve.os.execve", run_here)
    return create_app({"TESTING": True}).test_cli_runner()


@pytest.mark.parametrize("attr", ["signing_key", "authsvc_key"])
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_serve_refuses_every_private_key_it_reads_when_others_may(
        serve_runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        attr: str, mode: int) -> None:
    """The private keys authsvc reads are the signing key (tokens) and its HTTPS key
    (granian); the CA key is never read, the registry key only by the registry, and the
    next signing key by ``certs rotate --activate`` (tests/test_rotation.py)."""

    def must_not_serve(**options: Any) -> None:
        raise AssertionError("serve started with an unsafe key")

    monkeypatch.setattr("authsvc.server.serve.Granian", must_not_serve)
    path = getattr(CertPaths(tmp_path / "certs"), attr)
    path.chmod(mode)
    result = serve_runner.invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 1, result.output
    assert f"Error: {path} is readable by group or others" in result.output
    assert f"chmod 600 {path}" in result.output


class FakeGranian:
    """Stands in for granian's server: records the options it was made with and its start."""

    made: list["FakeGranian"] = []

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.served = False
        self.environ = dict(os.environ)
        self.made.append(self)

    def serve(self) -> None:
        self.served = True


def test_serve_starts_with_owner_only_keys(serve_runner: FlaskCliRunner, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("authsvc.server.serve.Granian", FakeGranian)
    monkeypatch.setattr(FakeGranian, "made", [])
    result = serve_runner.invoke(cli, ["serve", "--port", "1", "--workers", "3"])
    assert result.exit_code == 0, result.output
    [server] = FakeGranian.made
    assert server.served
    certs = CertPaths(tmp_path / "certs")
    assert {key: str(value) for key, value in server.options.items() if key in (
        "target", "interface", "http", "ssl_cert", "ssl_key", "ssl_protocol_min", "port",
        "workers")} == {
        "target": "authsvc.server.serve:worker_app", "interface": "rsgi", "http": "1",
        "ssl_cert": str(certs.authsvc), "ssl_key": str(certs.authsvc_key),
        "ssl_protocol_min": "tls1.2", "port": "1", "workers": "3"}
    assert server.options["factory"] is True
    # the bridge writes the access line (test_each_request_is_logged_without_its_secrets),
    # without the query or any header
    assert server.options["log_access"] is False
    assert "query" not in ACCESS_FORMAT and "header" not in ACCESS_FORMAT
    # the workers find the instance and certificates the server found, wherever they run
    assert server.environ["AUTHSVC_INSTANCE"] == str((tmp_path / "instance").resolve())
    assert server.environ["AUTHSVC_CERTS_DIR"] == str((tmp_path / "certs").resolve())
    # each worker runs the app on THREADS threads, once a request's body has arrived
    assert server.environ["AUTHSVC_THREADS"] == str(DEFAULTS["THREADS"])


WORKER_WHOSE_SUPERVISOR_DIED = """
import os, signal, sys
from authsvc.server import serve
# what a granian worker inherits from the supervisor: a SIGTERM handler that stops nothing here
signal.signal(signal.SIGTERM, lambda signum, frame: None)
os.environ[serve.SUPERVISOR_VARIABLE] = sys.argv[1]
serve.start_worker()
print("still serving", flush=True)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
@pytest.mark.parametrize("supervisor", ["parent", "gone"])
def test_a_worker_whose_supervisor_is_gone_stops_while_it_loads(supervisor: str) -> None:
    """A worker that finds, as it loads its app, that the supervisor is no longer its parent
    ends by SIGTERM, whatever handler it inherited; one whose supervisor is there carries on
    (the run that CI once saw: a second worker still loading when the supervisor was killed
    served on with no parent)."""
    pid = os.getpid() if supervisor == "parent" else 1 << 22
    done = subprocess.run([sys.executable, "-c", WORKER_WHOSE_SUPERVISOR_DIED, str(pid)],
                          capture_output=True, text=True, timeout=60)
    if supervisor == "parent":
        assert done.returncode == 0 and "still serving" in done.stdout, done.stderr
    else:
        assert done.returncode == -signal.SIGTERM, (done.returncode, done.stdout, done.stderr)
        assert "still serving" not in done.stdout

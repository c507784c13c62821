"""The servers the benchmark measures, on 127.0.0.1 over HTTPS with the site's certificates:
``authsvc serve`` itself and the same-run baselines (bench/baseline_app.py); starting them,
waiting until they answer, checking that each answers every request with the token asked
for, and stopping them."""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procs
from bench.kinds import BASIC_HEADER, REFRESH_PATH, Kind, requests_for
from bench.procs import BenchError, executable, log, python
from bench.seed import PASSWORD
from bench.site import BCRYPT_ROUNDS, Site
from tests.e2e.processes import free_port, https_request

HOST = "127.0.0.1"  # loopback only, never anything else


@dataclass
class Server:
    #: "authsvc", "ceiling" (a fixed answer: the server alone), "baseline" (signs per
    #: request), "gthread" (the same behind gunicorn) or "bcrypt" (bcrypt + sign)
    role: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    rss_rest: dict[int, float] = field(default_factory=dict)
    rss_peak: dict[int, float] = field(default_factory=dict)
    rss_after: dict[int, float] = field(default_factory=dict)
    #: CPU seconds each worker used in measured runs: shows how the load spread over them.
    cpu: dict[int, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return {"authsvc": "authsvc", "ceiling": "ceiling", "baseline": "baseline",
                "gthread": "baseline-gthread", "bcrypt": "bcrypt-baseline"}[self.role]

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    def pids(self) -> list[int]:
        return [self.process.pid, *procs.descendants(self.process.pid)]

    def workers(self) -> list[int]:
        return procs.descendants(self.process.pid)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def start_server(role: str, site: Site, args: argparse.Namespace, tmp: Path,
                 port: int | None = None) -> Server:
    """Start the server of ``role`` for ``site`` on ``port`` (a free one by default), not
    waiting for it."""
    port = port or free_port(HOST)
    log_path = tmp / f"{role}-{port}.log"
    env = dict(site.env)
    certs = site.certs
    if role == "authsvc":
        argv = [executable("authsvc"), "serve", "--host", HOST, "--port", str(port),
                "--workers", str(args.workers)]
        cwd = site.root
    else:
        argv = [python(), "-m", "bench.baseline_app", "--mode",
                role if role in ("bcrypt", "ceiling") else "sign",
                "--server", "gthread" if role == "gthread" else "authsvc",
                "--certs", str(certs), "--host", HOST, "--port", str(port),
                "--workers", str(args.workers), "--threads", str(args.server_threads),
                "--bcrypt-rounds", str(BCRYPT_ROUNDS)]
        cwd = site.src
        env["BENCH_PASSWORD"] = PASSWORD
    process = procs.start(argv, env, cwd, log_path)
    return Server(role, port, process, log_path)


def send(server: Server, ca: Path, method: str, path: str, body: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request to ``server``; returns the status and the body."""
    status, _, content = https_request(HOST, server.port, ca, method, path, body, headers,
                                       timeout=30)
    return status, content


def wait_ready(server: Server, ca: Path, timeout: float = 60) -> None:
    """Wait until ``server`` answers HTTPS; raises BenchError when it exits or does not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"{server.label} exited ({server.process.returncode}):\n"
                             f"{server.log_tail()}")
        try:
            if send(server, ca, "GET", "/nowhere")[0] == 404:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.2)
    raise BenchError(f"{server.label} did not answer within {timeout:.0f} s:\n{server.log_tail()}")


def rss_snapshot(server: Server) -> dict[int, float]:
    """The RSS of each of ``server``'s workers now, in MiB."""
    return {pid: value for pid in server.workers() if (value := procs.rss_mib(pid)) is not None}


def token_claims(body: bytes) -> dict[str, Any]:
    """The claims of the token in a ``/token`` answer (not verified: the tests do that)."""
    token = json.loads(body)["token"]
    payload = token.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return claims


def get_refresh_token(server: Server, ca: Path) -> str:
    """A refresh token of the seeded user, from authsvc."""
    status, body = send(server, ca, "GET", REFRESH_PATH, headers={"Authorization": BASIC_HEADER})
    if status != 200 or "refresh_token" not in json.loads(body):
        raise BenchError(f"no refresh token from authsvc: {status} {body[:300]!r}")
    return str(json.loads(body)["refresh_token"])


def preflight(server: Server, ca: Path, kind: Kind, refresh_token: str) -> None:
    """Each distinct request once: 200 and a token that grants what was asked (authsvc must
    not look fast by denying; the ceiling's one answer is the same for every request)."""
    expected = ["pull"] if kind.name == "anon" else ["pull", "push"]
    for method, path, body, headers in requests_for(kind, refresh_token):
        status, answer = send(server, ca, method, path, body, headers)
        if status != 200:
            raise BenchError(f"{server.label} {kind.name}: {method} {path} answered {status}: "
                             f"{answer[:300]!r}")
        if server.role == "ceiling":
            continue
        access = token_claims(answer)["access"]
        if not access or access[0]["actions"] != expected:
            raise BenchError(f"{server.label} {kind.name}: token access {access!r}, expected "
                             f"actions {expected}")


def start_servers(roles: list[str], site: Site, args: argparse.Namespace,
                  tmp: Path) -> list[Server]:
    """Start the servers of ``roles``, wait until each answers, note their RSS at rest."""
    servers = [start_server(role, site, args, tmp) for role in roles]
    for server in servers:
        wait_ready(server, site.ca)
    time.sleep(0.5)
    for server in servers:
        server.rss_rest = rss_snapshot(server)
        log(f"{server.label} on {server.url}: pid {server.process.pid}, "
            f"workers {server.workers()}")
    return servers


def stop_servers(servers: list[Server]) -> None:
    """Note each server's RSS after the load, then stop it."""
    for server in servers:
        server.rss_after = rss_snapshot(server)
        procs.stop(server.process)

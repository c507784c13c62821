"""Slow and idle clients cannot stop the service (issue 10, finding 1).

Hundreds of TLS connections that send a request's headers and then a body that never finishes
(``Content-Length`` bodies to ``POST /token``, chunked ones to ``/token`` and the API), that
send half their headers, or that send nothing at all, are held open against the real
``authsvc serve``; meanwhile real token requests (Basic, the OAuth2 refresh grant, anonymous)
keep succeeding at their normal latency, and skopeo pushes and pulls through the real registry.
Before the fix, 16 such bodies made every other request time out.
"""

from __future__ import annotations

import socket
import ssl
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from .clients import Credentials, Skopeo, expect_success
from .world import AuthsvcInstance, ImageFactory, Registry

pytestmark = pytest.mark.e2e

SLOW_BODIES = 150          # Content-Length: 1000, then a few bytes
SLOW_CHUNKED = 100         # Transfer-Encoding: chunked, one chunk, never the last
SLOW_HEADERS = 30          # half a request line and some headers
IDLE = 100                 # a TLS handshake, then nothing
#: Far above a token's normal latency (milliseconds), far below the 10 s client timeout that
#: every request hit before the fix.
LATENCY_BOUND = 2.0


def connect(authsvc: AuthsvcInstance) -> ssl.SSLSocket:
    parts = urlsplit(authsvc.url)
    assert parts.hostname is not None and parts.port is not None
    context = ssl.create_default_context(cafile=str(authsvc.ca_file))
    raw = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return context.wrap_socket(raw, server_hostname=parts.hostname)


def slow_request(kind: int) -> bytes:
    """The part of a request that a slow client sends before it stops."""
    if kind == 0:
        return (b"POST /token HTTP/1.1\r\nHost: authsvc\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 1000\r\n\r\ngrant_type=pass")
    if kind == 1:
        return (b"POST /token HTTP/1.1\r\nHost: authsvc\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n\r\n5\r\ngrant\r\n")
    if kind == 2:
        return (b"PUT /api/v1/users/alice HTTP/1.1\r\nHost: authsvc\r\n"
                b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n1\r\n{\r\n")
    return b"GET /token?service=registry HTTP/1.1\r\nHost: auth"


@contextmanager
def held_connections(authsvc: AuthsvcInstance) -> Iterator[list[ssl.SSLSocket]]:
    """Slow and idle connections, open until the block ends."""
    plan = ([0] * SLOW_BODIES + [1] * (SLOW_CHUNKED // 2) + [2] * (SLOW_CHUNKED // 2)
            + [3] * SLOW_HEADERS + [None] * IDLE)
    with ExitStack() as stack:
        sockets = []
        for kind in plan:
            sock = stack.enter_context(closing(connect(authsvc)))
            if kind is not None:
                sock.sendall(slow_request(kind))
            sockets.append(sock)
        time.sleep(1)  # every slow request has reached the server and is waiting
        yield sockets


def timed_tokens(authsvc: AuthsvcInstance, alice: Credentials, refresh_token: str,
                 rounds: int) -> list[float]:
    """Seconds each token request took; each on a new connection, each must succeed."""
    latencies = []
    for n in range(rounds):
        started = time.monotonic()
        ca = str(authsvc.ca_file)
        if n % 3 == 0:
            answer = requests.get(f"{authsvc.url}/token", timeout=10, verify=ca, auth=(
                alice.username, alice.password), params={
                "service": "registry", "scope": "repository:alice/slow:pull,push"})
        elif n % 3 == 1:
            answer = requests.post(f"{authsvc.url}/token", timeout=10, verify=ca, data={
                "grant_type": "refresh_token", "refresh_token": refresh_token,
                "service": "registry", "client_id": "slow-test",
                "scope": "repository:alice/slow:pull"})
        else:
            answer = requests.get(f"{authsvc.url}/token", timeout=10, verify=ca,
                                  params={"service": "registry"})
        latencies.append(time.monotonic() - started)
        assert answer.status_code == 200, answer.text
        assert answer.json()["token"]
    return latencies


def refresh_token_for(authsvc: AuthsvcInstance, user: Credentials) -> str:
    answer = requests.get(f"{authsvc.url}/token", verify=str(authsvc.ca_file), timeout=10,
                          auth=(user.username, user.password), params={
                              "service": "registry", "client_id": "slow-test",
                              "offline_token": "true"})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["refresh_token"]
    return token


def test_slow_and_idle_clients_do_not_stop_tokens_or_pushes(
        authsvc: AuthsvcInstance, registry: Registry, skopeo: Skopeo,
        users: dict[str, Credentials], make_image: ImageFactory, tmp_path: Path) -> None:
    alice = users["alice"]
    refresh = refresh_token_for(authsvc, alice)
    normal = timed_tokens(authsvc, alice, refresh, 15)
    with held_connections(authsvc):
        during = timed_tokens(authsvc, alice, refresh, 30)
        image = make_image("alice/slow")
        expect_success(skopeo.push(image, registry.ref("alice/slow", "v1"), alice))
        expect_success(skopeo.pull(registry.ref("alice/slow", "v1"), tmp_path / "pulled",
                                   "v1", alice))
    assert max(during) < LATENCY_BOUND, (normal, during)
    assert statistics.median(during) < max(0.25, 10 * statistics.median(normal)), (
        normal, during)


def test_a_body_that_never_finishes_is_answered_408_and_closed(
        authsvc: AuthsvcInstance) -> None:
    """The server gives up on the body after BODY_TIMEOUT (10 s by default) and says so in
    the registry's error format; the app never saw the request."""
    with closing(connect(authsvc)) as sock:
        sock.sendall(slow_request(0))
        sock.settimeout(30)
        started = time.monotonic()
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    waited = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    assert b"connection: close" in head.lower()
    assert b'"REQUEST_TIMEOUT"' in body
    assert 5 < waited < 25

"""The server's bridge: bodies read on the event loop, within a deadline and a size, before a
thread runs the WSGI app; the environ made from the request alone."""

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from granian._granian import RSGIProtocolClosed

from authsvc.server.rsgi_bridge import BodyFirstWSGI, WSGIApp


class Headers:
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def items(self) -> list[tuple[str, str]]:
        return list(self.pairs)


@dataclass
class Scope:
    method: str = "GET"
    path: str = "/token"
    query_string: str = ""
    header_pairs: list[tuple[str, str]] = field(default_factory=list)
    proto: str = "http"
    http_version: str = "1.1"
    server: str = "127.0.0.1:5001"
    client: str = "192.0.2.7:40000"
    scheme: str = "https"
    authority: str | None = None

    @property
    def headers(self) -> Headers:
        return Headers(self.header_pairs)


class Protocol:
    """granian's RSGI HTTP protocol: the body as chunks (``stall`` waits for ever after them,
    ``closed`` ends as a vanished client does), and the response it was given."""

    def __init__(self, chunks: Iterable[bytes] = (), *, stall: bool = False,
                 closed: bool = False) -> None:
        self.chunks = list(chunks)
        self.stall = stall
        self.closed = closed
        self.response: tuple[int, list[tuple[str, str]], bytes] | None = None

    async def __call__(self) -> bytes:
        body = b"".join([chunk async for chunk in self])
        return body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.stall:
            await asyncio.sleep(3600)
        if self.closed:
            raise RSGIProtocolClosed("RSGI transport is closed")

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.response = (status, headers, body)


class EchoApp:
    """A WSGI app that answers with what it was given."""

    def __init__(self) -> None:
        self.environs: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.environs.append(environ)
        body = environ["wsgi.input"].read()
        start_response("201 Created", [("Content-Type", "text/plain")])
        return [b"got ", body]


@pytest.fixture
def app() -> EchoApp:
    return EchoApp()


def serve(app: WSGIApp, scope: Scope, protocol: Protocol, *, timeout: float = 5,
          max_body: int = 100) -> tuple[int, dict[str, str], bytes]:
    bridge = BodyFirstWSGI(app, threads=2, max_body=max_body, body_timeout=timeout)

    async def run() -> None:
        await bridge.__rsgi__(scope, protocol)

    try:
        asyncio.run(run())
    finally:
        bridge.__rsgi_del__(None)
    assert protocol.response is not None
    status, headers, body = protocol.response
    return status, {name.lower(): value for name, value in headers}, body


def form(length: int | None = None) -> list[tuple[str, str]]:
    pairs = [("content-type", "application/x-www-form-urlencoded")]
    return pairs + ([("content-length", str(length))] if length is not None else
                    [("transfer-encoding", "chunked")])


def test_a_body_is_read_whole_before_the_app_runs(app: EchoApp) -> None:
    status, headers, body = serve(app, Scope("POST", header_pairs=form(12)),
                                  Protocol([b"grant", b"_type=x"]))
    assert (status, body) == (201, b"got grant_type=x")
    assert headers["content-type"] == "text/plain"
    assert app.environs[0]["CONTENT_LENGTH"] == "12"


def test_a_chunked_body_arrives_with_its_length_known(app: EchoApp) -> None:
    status, _, body = serve(app, Scope("POST", header_pairs=form()), Protocol([b"a=1", b"&b=2"]))
    assert (status, body) == (201, b"got a=1&b=2")
    environ = app.environs[0]
    assert environ["CONTENT_LENGTH"] == "7" and "HTTP_TRANSFER_ENCODING" not in environ


def test_a_body_that_stops_coming_is_answered_408_without_the_app(app: EchoApp) -> None:
    status, headers, body = serve(app, Scope("POST", header_pairs=form(50)),
                                  Protocol([b"grant"], stall=True), timeout=0.2)
    assert status == 408
    assert headers["connection"] == "close"
    assert json.loads(body)["errors"][0]["code"] == "REQUEST_TIMEOUT"
    assert app.environs == []


def test_a_chunked_body_that_stops_coming_is_answered_408(app: EchoApp) -> None:
    status, _, _ = serve(app, Scope("PUT", "/api/v1/users/x", header_pairs=form()),
                         Protocol([b"{"], stall=True), timeout=0.2)
    assert status == 408
    assert app.environs == []


@pytest.mark.parametrize("pairs,chunks", [
    (form(101), [b"x" * 101]),          # declared too large: refused before reading
    (form(), [b"x" * 60, b"x" * 60]),   # chunked, grows past the limit
])
def test_a_body_over_the_limit_is_answered_413(app: EchoApp, pairs: list[tuple[str, str]],
                                               chunks: list[bytes]) -> None:
    status, headers, body = serve(app, Scope("POST", header_pairs=pairs), Protocol(chunks))
    assert status == 413 and headers["connection"] == "close"
    assert json.loads(body)["errors"][0]["code"] == "REQUEST_ENTITY_TOO_LARGE"
    assert app.environs == []


def test_a_client_gone_mid_body_never_reaches_the_app(app: EchoApp) -> None:
    bridge = BodyFirstWSGI(app, threads=1, max_body=100, body_timeout=5)
    protocol = Protocol([b"gra"], closed=True)
    try:
        asyncio.run(bridge.__rsgi__(Scope("POST", header_pairs=form(50)), protocol))
    finally:
        bridge.__rsgi_del__(None)
    assert protocol.response is None and app.environs == []


def test_the_environ_holds_the_request_and_nothing_else(
        app: EchoApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_AUTHORIZATION", "Basic from-the-environment")
    monkeypatch.setenv("QUERY_STRING", "scope=repository:x/y:push")
    # granian has decoded the path's %-escapes; what stays is the client's "%41"
    scope = Scope("GET", "/a b/%41/\u00e9", "service=registry", [
        ("host", "auth.example"), ("x-forwarded-for", "198.51.100.1"),
        ("x_forwarded_for", "203.0.113.9"), ("accept", "a"), ("accept", "b")],
        client="[2001:db8::5]:40000")
    status, _, _ = serve(app, scope, Protocol())
    environ = app.environs[0]
    assert status == 201
    assert environ["PATH_INFO"].encode("latin-1").decode() == "/a b/%41/\u00e9"
    assert environ["QUERY_STRING"] == "service=registry"
    assert environ["REMOTE_ADDR"] == "2001:db8::5"
    assert environ["HTTP_HOST"] == "auth.example"
    assert environ["HTTP_ACCEPT"] == "a,b"
    # a header with "_" could pass for one with "-": dropped, as nginx and gunicorn do
    assert environ["HTTP_X_FORWARDED_FOR"] == "198.51.100.1"
    assert "HTTP_AUTHORIZATION" not in environ
    assert environ["wsgi.url_scheme"] == "https"


def test_an_app_that_fails_gets_a_json_500() -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    status, _, body = serve(broken, Scope(), Protocol())
    assert status == 500
    assert json.loads(body)["errors"][0]["code"] == "INTERNAL_ERROR"


def test_each_answer_is_logged_in_the_access_format(
        app: EchoApp, caplog: pytest.LogCaptureFixture) -> None:
    """One line per answered request on ``granian.access`` (a refusal too); none for a client
    that went away before it could be answered."""
    bridge = BodyFirstWSGI(app, threads=1, max_body=100, body_timeout=5,
                           access_format='%(addr)s "%(method)s %(path)s" %(status)d')

    async def run() -> None:
        await bridge.__rsgi__(Scope("GET", "/token"), Protocol())
        await bridge.__rsgi__(Scope("POST", "/token", header_pairs=form(101)), Protocol())
        await bridge.__rsgi__(Scope("POST", "/token", header_pairs=form(50)),
                              Protocol([b"gra"], closed=True))

    with caplog.at_level(logging.INFO, logger="granian.access"):
        try:
            asyncio.run(run())
        finally:
            bridge.__rsgi_del__(None)
    assert [r.getMessage() for r in caplog.records if r.name == "granian.access"] == [
        '192.0.2.7 "GET /token" 201', '192.0.2.7 "POST /token" 413']


class ClosingAnswer:
    """A WSGI answer iterable with ``close`` (PEP 3333: the server calls it when done)."""

    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Any:
        return iter([b"streamed"])

    def close(self) -> None:
        self.closed = True


def test_an_answer_with_close_is_closed_after_it_is_read() -> None:
    answer = ClosingAnswer()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return answer

    status, _, body = serve(app, Scope(), Protocol([]))
    assert (status, body) == (200, b"streamed")
    assert answer.closed

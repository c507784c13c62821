"""Serving a WSGI app over granian's RSGI interface, each request body read before a thread.

Granian's own WSGI interface calls the app on one of its threads as soon as a request's headers
have arrived, and the app then reads the body from that thread, blocking, with no deadline: a
client that sends ``Content-Length: 1000`` and a few bytes holds a thread for as long as it
likes, and a handful of them stop the service (issue 10). Here the body is read on the worker's
event loop, which waits on slow clients at the cost of a coroutine each (granian admits up to
its ``backpressure``, by default 1024 / WORKERS, requests per worker at once), within
``body_timeout`` seconds for the whole body and ``max_body`` bytes; only a request whose body
has fully arrived is handed to one of ``threads`` threads, which run the WSGI app.

Slow headers are granian's (``HTTP1Settings.header_read_timeout``); an idle keep-alive
connection holds no thread either.

The environ is built from the request alone (granian's WSGI interface starts each one from a
copy of the process environment), and a header whose name holds ``_`` is dropped, as nginx and
gunicorn do: ``X_Forwarded_For`` would otherwise pass for ``X-Forwarded-For``.
"""

import asyncio
import io
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from granian._granian import RSGIProtocolClosed as ProtocolClosed
from granian._granian import RSGIProtocolError as ProtocolError

from authsvc.core.error_bodies import (
    INTERNAL_ERROR,
    ErrorAnswer,
    body_too_large,
    body_too_slow,
    invalid_content_length,
)
from authsvc.observability.log_lines import info_line

log = logging.getLogger(__name__)
#: Where the access lines go: the logger granian's own access log uses.
access_log = logging.getLogger("granian.access")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Headers = list[tuple[str, str]]

#: Methods whose requests carry no body (granian gives them none either).
BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})


class Scope(Protocol):
    """What this bridge reads of granian's RSGI HTTP scope."""

    proto: str
    http_version: str
    server: str
    client: str
    scheme: str
    method: str
    path: str
    query_string: str
    authority: str | None

    @property
    def headers(self) -> Any: ...


Answer = tuple[int, Headers, bytes]
Job = tuple["asyncio.Future[Answer]", dict[str, Any]]


class AppThreads:
    """``count`` threads that run the WSGI app, each call answered on the event loop.

    What ``loop.run_in_executor`` does, for less than a third of its cost (measured): jobs go
    in through a SimpleQueue, answers come back through another, and the loop is woken once for
    every answer that arrives while it is busy rather than once per answer. Every request
    crosses it.
    """

    def __init__(self, run: Callable[[dict[str, Any]], Answer], count: int) -> None:
        self.run = run
        self.jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.answers: queue.SimpleQueue[tuple[asyncio.Future[Answer], Answer]] = (
            queue.SimpleQueue())
        self.woken = False
        self.threads = [threading.Thread(target=self.work, name=f"authsvc-app-{n}", daemon=True)
                        for n in range(count)]
        for thread in self.threads:
            thread.start()

    def call(self, environ: dict[str, Any]) -> "asyncio.Future[Answer]":
        """The app's answer to ``environ``, to await on the running loop."""
        future = asyncio.get_running_loop().create_future()
        self.jobs.put((future, environ))
        return future

    def work(self) -> None:
        while (job := self.jobs.get()) is not None:
            future, environ = job
            self.answers.put((future, self.run(environ)))
            if not self.woken:
                self.woken = True
                future.get_loop().call_soon_threadsafe(self.deliver)

    def deliver(self) -> None:
        """On the loop: settle every answer that has arrived. (``woken`` is cleared first, so
        an answer put after the last ``get`` below wakes the loop again.)"""
        self.woken = False
        answers = self.answers
        while not answers.empty():
            future, answer = answers.get()
            if not future.cancelled():
                future.set_result(answer)

    def stop(self) -> None:
        """Let the threads finish the calls queued so far, then end them."""
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()


#: Header name → environ key, for the names clients send ("" for a name that is dropped).
_ENVIRON_KEYS: dict[str, str] = {}


def _environ_key(name: str) -> str:
    """``HTTP_X_NAME`` for ``x-name``; "" for a name with ``_``, which would pass for one
    with ``-``. Remembered for the first 256 names."""
    key = "" if "_" in name else name.upper().replace("-", "_")
    if key and key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        key = "HTTP_" + key
    if len(_ENVIRON_KEYS) < 256:
        _ENVIRON_KEYS[name] = key
    return key


def _wsgi_string(text: str) -> str:
    """PEP 3333: a path is its bytes (granian decodes RSGI's as UTF-8) read as Latin-1."""
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    """The body ended before its Content-Length: the client went away mid-request."""


class BodyFirstWSGI:
    """An RSGI application (granian calls ``__rsgi__``) that runs ``app``, a WSGI app, on
    ``threads`` threads once the request body has arrived.

    A body that takes longer than ``body_timeout`` seconds is answered 408, one larger than
    ``max_body`` bytes (declared or sent) 413, both with ``Connection: close``, without the app.

    With ``access_format``, each answered request is logged on ``granian.access`` in that
    format (``addr``, ``method``, ``path``, ``protocol``, ``status``, ``dt_ms``): the line
    granian's own access log writes, without its per-request wrappers and the timestamp it
    formats whether the format shows it or not.
    """

    def __init__(self, app: WSGIApp, *, threads: int, max_body: int, body_timeout: float,
                 access_format: str | None = None) -> None:
        self.app = app
        self.access_format = access_format
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.threads = AppThreads(self.call, threads)
        self.base_environ: dict[str, Any] = {
            "SCRIPT_NAME": "", "SERVER_SOFTWARE": "granian", "GATEWAY_INTERFACE": "CGI/1.1",
            "wsgi.version": (1, 0), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
            "wsgi.multiprocess": True, "wsgi.run_once": False,
            # werkzeug reads a body of unknown length (chunked) to its end only when told so
            "wsgi.input_terminated": True,
        }

    def __rsgi_del__(self, _loop: Any) -> None:
        self.threads.stop()

    async def __rsgi__(self, scope: Scope, protocol: Any) -> None:
        if scope.proto != "http":
            return
        started = time.perf_counter()
        environ = self.environ(scope)
        status = await self.answer(scope, environ, protocol)
        if self.access_format is not None and status:
            info_line(access_log, self.access_format % {
                "addr": environ["REMOTE_ADDR"], "method": scope.method,
                "path": scope.path, "protocol": f"HTTP/{scope.http_version}", "status": status,
                "dt_ms": (time.perf_counter() - started) * 1000})

    async def answer(self, scope: Scope, environ: dict[str, Any], protocol: Any) -> int:
        """Answer the request; the status sent (0 when the client went away first)."""
        if scope.method not in BODYLESS and (
                environ.get("CONTENT_LENGTH", "0") != "0" or "HTTP_TRANSFER_ENCODING" in environ):
            try:
                refusal = await self.receive_body(environ, protocol)
            except ClientGone:
                return 0  # nobody to answer; the app never sees a cut-off body
            if refusal is not None:  # answered before the app has seen the request
                protocol.response_bytes(refusal.status, list(refusal.headers), refusal.body)
                return refusal.status
        else:
            environ["wsgi.input"] = io.BytesIO(b"")
        status, headers, body = await self.threads.call(environ)
        protocol.response_bytes(status, headers, body)
        return status

    async def receive_body(self, environ: dict[str, Any], protocol: Any) -> ErrorAnswer | None:
        """Read the whole body into ``environ`` (``wsgi.input`` and ``CONTENT_LENGTH``); else
        the answer to refuse the request with (it closes the connection). Raises ClientGone."""
        # A chunked body's length is what arrives (HTTP: Transfer-Encoding beats Content-Length)
        declared = "" if "HTTP_TRANSFER_ENCODING" in environ else environ.get("CONTENT_LENGTH", "")
        if declared and (not declared.isdigit() or int(declared) > self.max_body):
            if not declared.isdigit():
                return invalid_content_length()
            return body_too_large(self.max_body)
        try:
            async with asyncio.timeout(self.body_timeout):
                # With a length, hyper reads no further than it; without (chunked), count.
                body = await (protocol() if declared else self.read_body(protocol))
        except BodyTooLarge:
            return body_too_large(self.max_body)
        except (ProtocolClosed, ProtocolError) as gone:
            raise ClientGone from gone
        except TimeoutError:
            return body_too_slow(self.body_timeout)
        if declared and len(body) != int(declared):
            raise ClientGone
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return None

    async def read_body(self, protocol: Any) -> bytes:
        """Raises BodyTooLarge past ``max_body`` bytes."""
        chunks = []
        size = 0
        async for chunk in protocol:
            size += len(chunk)
            if size > self.max_body:
                raise BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    def environ(self, scope: Scope) -> dict[str, Any]:
        """The WSGI environ of ``scope``, without its body."""
        client_host = scope.client.rpartition(":")[0].strip("[]")
        server_host, _, server_port = scope.server.rpartition(":")
        environ = {
            **self.base_environ,
            "REQUEST_METHOD": scope.method,
            "PATH_INFO": path if (path := scope.path).isascii() else _wsgi_string(path),
            "QUERY_STRING": scope.query_string,
            "SERVER_NAME": server_host.strip("[]"), "SERVER_PORT": server_port,
            "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
            "REMOTE_ADDR": client_host,
            "wsgi.url_scheme": scope.scheme,
        }
        for name, value in scope.headers.items():
            key = _ENVIRON_KEYS.get(name) or _environ_key(name)
            if key in environ:
                environ[key] = f"{environ[key]},{value}"
            elif key:
                environ[key] = value
        if "HTTP_HOST" not in environ and scope.authority:
            environ["HTTP_HOST"] = scope.authority
        return environ

    def call(self, environ: dict[str, Any]) -> Answer:
        """Run the WSGI app (on a pool thread): the status, headers and whole body."""
        started: list[Any] = []

        def start_response(status: str, headers: Headers, exc_info: Any = None) -> None:
            started[:] = [int(status.split(" ", 1)[0]), headers]

        try:
            result = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:  # (a list, the usual answer, has no close: no AttributeError to make)
                close = None if type(result) is list else getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            log.exception("unhandled error in the WSGI app")
            return INTERNAL_ERROR.status, list(INTERNAL_ERROR.headers), INTERNAL_ERROR.body
        status, headers = started
        return status, headers, body

"""An unreachable database gives 503 with a clear message, and authsvc recovers by itself
when the database comes back."""

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, make_url

from authsvc import create_app
from authsvc.db.schema import empty_postgres_database, upgrade
from authsvc.db.services import services_of
from tests.conftest import PASSWORD, TEST_CONFIG

PG_URL = os.environ.get("AUTHSVC_TEST_PG_BASE",
                        "postgresql+psycopg://postgres@127.0.0.1:5432") + "/authsvc_outage"


class Forwarder:
    """A TCP relay from a loopback port to the database that can be cut and restored."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.create_server(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._stop.clear()
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=True)
        listener.settimeout(0.2)
        self._sockets.append(listener)
        self._spawn(self._accept, listener)

    def cut(self) -> None:
        """Close the listener and every relayed connection, as a database going down does."""
        self._stop.set()
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=5)
        self._sockets, self._threads = [], []

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection(self.target, timeout=5)
            self._sockets += [client, upstream]
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            try:
                sink.sendall(data)
            except OSError:
                break
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def token(app: Flask) -> Any:
    return app.test_client().get("/token?service=registry&scope=repository:alice/a:pull",
                                 auth=("alice", PASSWORD))


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json["errors"][0]["code"] == "UNAVAILABLE"
    assert "Traceback" not in response.get_data(as_text=True)


def test_unreachable_sqlite_file_is_503(tmp_path: Path, certs_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHSVC_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("AUTHSVC_CERTS_DIR", str(certs_dir))
    app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path}/missing/dir/x.db"})
    assert_unavailable(token(app))
    assert_unavailable(app.test_client().get("/api/v1/me", auth=("alice", PASSWORD)))
    response = app.test_client().post("/token", data={
        "grant_type": "password", "username": "alice", "password": PASSWORD,
        "service": "registry", "client_id": "x"})
    assert_unavailable(response)


@pytest.fixture
def relay() -> Iterator[Forwarder]:
    url = make_url(PG_URL)
    try:
        socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=2).close()
    except OSError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL at {url.host}:{url.port}: {e}")
    forwarder = Forwarder((url.host or "127.0.0.1", url.port or 5432))
    forwarder.start()
    yield forwarder
    forwarder.cut()


def test_postgres_outage_is_503_and_recovers(relay: Forwarder, tmp_path: Path, certs_dir: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    empty_postgres_database(PG_URL)
    through_relay = make_url(PG_URL).set(host="127.0.0.1", port=relay.port)
    url = through_relay.render_as_string(hide_password=False)
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("AUTHSVC_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("AUTHSVC_CERTS_DIR", str(certs_dir))
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    with app.app_context():
        services_of(app).accounts.create_user("alice", PASSWORD)
    assert token(app).status_code == 200

    relay.cut()
    assert_unavailable(token(app))
    assert_unavailable(token(app))

    relay.start()
    assert token(app).status_code == 200
    with app.app_context():
        from authsvc.db.models import db

        db.engine.dispose()

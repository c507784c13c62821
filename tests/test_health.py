"""``/healthz`` and ``/readyz``: the process answers; the database, the signing key and Redis
are each checked, and a broken one is named without a secret."""

import json
import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from authsvc import create_app
from authsvc.pki.certs import CertPaths
from tests.conftest import TEST_CONFIG

REDIS_URL = os.environ.get("AUTHSVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SECRET = "s3cret-pw-9f2c"


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def make_app(tmp_path: Path, certs_dir: Path, monkeypatch: pytest.MonkeyPatch,
             ) -> Callable[..., Flask]:
    """An app built from ``settings``, with the test certificates unless ``certs`` is given;
    its database (SQLite unless DATABASE_URL says otherwise) is never created."""
    monkeypatch.setenv("AUTHSVC_INSTANCE", str(tmp_path / "instance"))

    def make(certs: Path = certs_dir, **settings: Any) -> Flask:
        monkeypatch.setenv("AUTHSVC_CERTS_DIR", str(certs))
        return create_app({**TEST_CONFIG, **settings})

    return make


def readiness(app: Flask) -> tuple[int, dict[str, Any], str]:
    response = app.test_client().get("/readyz")
    text = response.get_data(as_text=True)
    return response.status_code, json.loads(text), text


def test_healthz_answers_ok(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_touches_no_database(make_app: Callable[..., Flask]) -> None:
    app = make_app(DATABASE_URL=f"postgresql+psycopg://u@127.0.0.1:{closed_port()}/x")
    response = app.test_client().get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_readyz_is_ok_when_every_part_works(client: Any) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok",
                                   "checks": {"database": "ok", "signing_key": "ok"}}


def test_readyz_names_an_unreachable_database(make_app: Callable[..., Flask]) -> None:
    port = closed_port()
    app = make_app(DATABASE_URL=f"postgresql+psycopg://authsvc:{SECRET}@127.0.0.1:{port}/x")
    status, body, text = readiness(app)
    assert status == 503
    assert body == {"status": "unavailable", "checks": {
        "database": "failed: OperationalError", "signing_key": "ok"}}
    assert SECRET not in text and str(port) not in text


def test_readyz_names_a_missing_signing_key(make_app: Callable[..., Flask], tmp_path: Path,
                                            certs_dir: Path) -> None:
    certs = tmp_path / "certs"
    shutil.copytree(certs_dir, certs)
    CertPaths(certs).signing_key.unlink()
    status, body, text = readiness(make_app(certs))
    assert status == 503
    assert body == {"status": "unavailable", "checks": {
        "database": "ok", "signing_key": "failed: CertificateError"}}
    assert str(certs) not in text  # no path, let alone key material


def test_readyz_checks_redis_when_it_is_set(make_app: Callable[..., Flask]) -> None:
    port = closed_port()
    app = make_app(REDIS_URL=f"redis://:{SECRET}@127.0.0.1:{port}/0")
    status, body, text = readiness(app)
    assert status == 503
    assert body == {"status": "unavailable", "checks": {
        "database": "ok", "signing_key": "ok", "redis": "failed: ConnectionError"}}
    assert SECRET not in text and str(port) not in text


def test_readyz_passes_with_a_working_redis(make_app: Callable[..., Flask]) -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL} (AUTHSVC_TEST_REDIS_URL)")
    status, body, _ = readiness(make_app(REDIS_URL=REDIS_URL))
    assert (status, body["checks"]["redis"]) == (200, "ok")

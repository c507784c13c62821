"""A token sent as the user name (``-u "$TOKEN:"``) is never recorded: not in the audit trail,
not in the log, not in the lockout store."""

import logging
import secrets
from contextlib import closing
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.db.credentials import recordable_name
from authsvc.db.models import AuditEvent, LoginFailure, db
from authsvc.db.services import services_of
from tests.conftest import PASSWORD
from tests.test_lockout import REDIS_URL, redis_client

REDIS_PREFIX = f"authsvc-test:{secrets.token_hex(6)}:"
STORES = [
    pytest.param("database", marks=pytest.mark.app_config(LOCKOUT_STORE="database")),
    pytest.param("redis", marks=pytest.mark.app_config(
        LOCKOUT_STORE="redis", REDIS_URL=REDIS_URL, REDIS_PREFIX=REDIS_PREFIX)),
]


def secrets_of(app: Flask, client: FlaskClient) -> list[str]:
    """An access token and a refresh token of alice, and a registry token."""
    with app.app_context():
        state = services_of(app)
        state.accounts.create_user("alice", PASSWORD)
        _, pat = state.access_tokens.create("alice", "laptop", "write")
        db.session.remove()
    login = client.get("/token?service=registry&client_id=docker&offline_token=true",
                       auth=("alice", PASSWORD)).json
    return [pat, login["refresh_token"], login["token"]]


def send_as_user_name(client: FlaskClient, secret: str) -> list[int]:
    """Every way a client can send ``secret`` as the user name; their statuses."""
    form = {"grant_type": "password", "username": secret, "password": "anything",
            "service": "registry", "client_id": "docker"}
    return [client.get("/token?service=registry", auth=(secret, "")).status_code,
            client.get("/token?service=registry", auth=(secret, "anything")).status_code,
            client.get("/token?service=registry", auth=(secret, secret)).status_code,
            client.post("/token", data=form).status_code,
            client.get("/api/v1/me", auth=(secret, "anything")).status_code,
            client.get("/api/v1/me", auth=(secret, secret)).status_code]


def lockout_keys(app: Flask, store: str) -> str:
    """Every key the lockout store holds, as one text."""
    if store == "redis":
        with closing(redis_client()) as client:
            return "\n".join(key.decode() for key in client.scan_iter(REDIS_PREFIX + "*"))
    with app.app_context():
        return "\n".join(db.session.execute(db.select(LoginFailure.key)).scalars())


def audit_rows(app: Flask) -> str:
    with app.app_context():
        rows = db.session.execute(db.select(AuditEvent)).scalars().all()
        return "\n".join(" ".join(str(getattr(row, column.name))
                                  for column in AuditEvent.__table__.columns) for row in rows)


@pytest.mark.parametrize("store", STORES)
def test_a_token_sent_as_the_user_name_is_never_recorded(
        app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture, store: str) -> None:
    if store == "redis":
        redis_client().close()  # skips without Redis
    with caplog.at_level(logging.DEBUG):
        used = secrets_of(app, client)
        statuses = [send_as_user_name(client, secret) for secret in used]
    try:
        assert statuses == [[401] * 6] * 3
        recorded = {"audit": audit_rows(app), "lockout": lockout_keys(app, store),
                    "log": "\n".join(record.getMessage() for record in caplog.records)}
        assert "login.failed" in recorded["audit"] and recorded["lockout"]
        for secret in used:
            for place, text in recorded.items():
                assert secret not in text, place
                assert secret[-30:] not in text, place
    finally:
        if store == "redis":
            with closing(redis_client()) as client:
                for key in client.scan_iter(REDIS_PREFIX + "*"):
                    client.delete(key)
            services_of(app).throttle.store.client.close()


@pytest.mark.app_config(LOCKOUT_ATTEMPTS=3, LOCKOUT_ADDRESS_ATTEMPTS=1000)
def test_a_user_name_is_still_recorded_and_locked_as_itself(
        app: Flask, client: FlaskClient, make_user: Any) -> None:
    make_user("alice")
    for _ in range(3):
        client.get("/token?service=registry", auth=("alice", "guess"))
    assert client.get("/token?service=registry", auth=("alice", PASSWORD)).status_code == 429
    assert "alice" in lockout_keys(app, "database")
    with app.app_context():
        actors = db.session.execute(db.select(AuditEvent.actor).where(
            AuditEvent.action == "login.failed")).scalars().all()
    assert set(actors) == {"alice"}


@pytest.mark.parametrize(("name", "recorded_as_itself"), [
    ("alice", True), ("ci-robot", True), ("eyJ", True), ("a.b.c", True),
    ("authsvc_pat_" + "A" * 43, False), ("authsvc_rt_" + "b" * 43, False),
    (" authsvc_pat_x", False), ("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", False),
])
def test_only_names_that_look_like_secrets_are_replaced(name: str,
                                                         recorded_as_itself: bool) -> None:
    recorded = recordable_name(name)
    assert (recorded == name) is recorded_as_itself
    if not recorded_as_itself:
        assert recorded == recordable_name(name) and len(recorded) < 25

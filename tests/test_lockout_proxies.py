"""Behind a load balancer: the lockout and the audit trail see the client, not the proxy, when
(and only when) the proxy is listed in TRUSTED_PROXIES."""

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.db.models import AuditEvent, db
from tests.conftest import PASSWORD

PROXY = "10.0.0.1"
TOKEN_URL = "/token?service=registry&scope=repository:root/x:pull"


def through(peer: str, forwarded_for: str | None = None) -> dict[str, Any]:
    """Request arguments for a request from ``peer`` carrying ``X-Forwarded-For``."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    return {"environ_base": {"REMOTE_ADDR": peer}, "headers": headers}


def password_grant(username: str, password: str) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password,
            "service": "registry", "client_id": "containerd"}


@pytest.mark.app_config(TRUSTED_PROXIES=[PROXY], LOCKOUT_ATTEMPTS=1000,
                        LOCKOUT_ADDRESS_ATTEMPTS=3)
def test_one_client_behind_the_proxy_does_not_lock_out_the_others(
        client: FlaskClient, make_user: Any) -> None:
    make_user("root", admin=True)
    attacker = through(PROXY, "203.0.113.5")
    statuses = [client.get(TOKEN_URL, auth=(f"user{i}", "guess"), **attacker).status_code
                for i in range(4)]
    assert statuses == [401] * 3 + [429]
    admin = through(PROXY, "198.51.100.7")
    assert client.get(TOKEN_URL, auth=("root", PASSWORD), **admin).status_code == 200
    assert client.post("/token", data=password_grant("root", PASSWORD),
                       **admin).status_code == 200
    assert client.get("/api/v1/me", auth=("root", PASSWORD), **admin).status_code == 200
    assert client.get("/api/v1/me", auth=("root", PASSWORD), **attacker).status_code == 429


@pytest.mark.app_config(TRUSTED_PROXIES=[PROXY], LOCKOUT_ATTEMPTS=1000,
                        LOCKOUT_ADDRESS_ATTEMPTS=3)
def test_the_api_and_the_oauth_grant_count_the_client_behind_the_proxy(
        client: FlaskClient, make_user: Any) -> None:
    make_user("root", admin=True)
    attacker = through(PROXY, "203.0.113.5")
    assert client.get("/api/v1/me", auth=("root", "guess"), **attacker).status_code == 401
    assert client.post("/token", data=password_grant("root", "guess"),
                       **attacker).status_code == 401
    assert client.get(TOKEN_URL, auth=("nobody", "guess"), **attacker).status_code == 401
    assert client.get(TOKEN_URL, auth=("root", PASSWORD), **attacker).status_code == 429
    assert client.get(TOKEN_URL, auth=("root", PASSWORD),
                      **through(PROXY, "198.51.100.7")).status_code == 200


@pytest.mark.parametrize("trusted", [
    pytest.param("none", marks=pytest.mark.app_config(LOCKOUT_ADDRESS_ATTEMPTS=3)),
    pytest.param("another", marks=pytest.mark.app_config(TRUSTED_PROXIES=["10.9.9.9"],
                                                         LOCKOUT_ADDRESS_ATTEMPTS=3)),
])
def test_forwarded_for_from_a_peer_that_is_not_trusted_is_ignored(
        client: FlaskClient, trusted: str) -> None:
    statuses = [client.get(TOKEN_URL, auth=("alice", "guess"),
                           **through("203.0.113.5", f"198.51.100.{i}")).status_code
                for i in range(4)]
    assert statuses == [401] * 3 + [429]


@pytest.mark.app_config(TRUSTED_PROXIES=["10.0.0.0/24"])
def test_the_audit_trail_names_the_client_behind_the_proxy(
        app: Flask, client: FlaskClient, make_user: Any) -> None:
    make_user("alice")
    assert client.get(TOKEN_URL, auth=("alice", PASSWORD),
                      **through(PROXY, "192.0.2.1, 198.51.100.7, 10.0.0.2")).status_code == 200
    assert client.get("/api/v1/me", auth=("alice", "guess"),
                      **through(PROXY, "198.51.100.8")).status_code == 401
    assert client.post("/token", data=password_grant("alice", "guess"),
                       **through(PROXY, "198.51.100.9")).status_code == 401
    assert client.get(TOKEN_URL, **through("203.0.113.5", "198.51.100.10")).status_code == 200
    with app.app_context():
        rows = db.session.execute(db.select(AuditEvent.action, AuditEvent.remote_addr)
                                  .order_by(AuditEvent.id)).all()
    assert {(action, address) for action, address in rows if action != "user.created"} == {
        ("token.issued", "198.51.100.7"), ("login.failed", "198.51.100.8"),
        ("login.failed", "198.51.100.9"), ("token.refused", "198.51.100.9"),
        ("token.issued", "203.0.113.5")}

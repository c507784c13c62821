"""Several replicas on one PostgreSQL database and one Redis: what one replica does, the
other sees on its next request."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from .servers import ADMIN, REDIS_URL, Replica, Site, fresh_postgres_database, make_site, replica

pytestmark = pytest.mark.e2e
PASSWORD = "alice-password-1"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    redis.Redis.from_url(REDIS_URL).ping()
    url = fresh_postgres_database("authsvc_replicas")
    built = make_site(tmp_path_factory.mktemp("replicas"), url, REDIS_URL=REDIS_URL,
                      LOCKOUT_ATTEMPTS="3")
    built.cli("user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    built.cli("user", "add", "bob", "--password-stdin", stdin=PASSWORD + "\n")
    return built


@pytest.fixture(scope="module")
def pair(site: Site) -> Iterator[tuple[Replica, Replica]]:
    with replica(site, "replica-a") as a, replica(site, "replica-b") as b:
        yield a, b


def token_access(r: Replica, auth: tuple[str, str] | None, scope: str) -> list[str]:
    response = r.session().get(f"{r.url}/token", params={"service": "registry", "scope": scope},
                               auth=auth)
    assert response.status_code == 200, response.text
    import jwt

    claims = jwt.decode(response.json()["token"], options={"verify_signature": False})
    return list(claims["access"][0]["actions"])


def test_refresh_token_from_one_replica_works_on_the_other(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    login = a.session().get(f"{a.url}/token", params={
        "service": "registry", "offline_token": "true", "client_id": "docker"},
        auth=("alice", PASSWORD))
    refresh_token = login.json()["refresh_token"]
    response = b.session().post(f"{b.url}/token", data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, "service": "registry",
        "client_id": "docker", "scope": "repository:alice/app:pull,push"})
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "repository:alice/app:pull,push"


def test_grant_and_revoke_on_one_replica_are_seen_by_the_other(
        pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    scope = "repository:alice/shared:pull,push"
    assert token_access(b, ("bob", PASSWORD), scope) == []
    put = a.session().put(f"{a.url}/api/v1/repositories/alice/shared/-/grants/bob",
                          json={"actions": ["pull"]}, auth=("alice", PASSWORD))
    assert put.status_code == 200, put.text
    assert token_access(b, ("bob", PASSWORD), scope) == ["pull"]
    gone = a.session().delete(f"{a.url}/api/v1/repositories/alice/shared/-/grants/bob",
                              auth=("alice", PASSWORD))
    assert gone.status_code == 204
    assert token_access(b, ("bob", PASSWORD), scope) == []


def test_lockout_counts_are_shared(pair: tuple[Replica, Replica], site: Site) -> None:
    a, b = pair
    for r in (a, b, a):
        bad = r.session().get(f"{r.url}/token", params={"service": "registry"},
                              auth=("bob", "wrong password"))
        assert bad.status_code == 401
    locked = b.session().get(f"{b.url}/token", params={"service": "registry"},
                             auth=("bob", PASSWORD))
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    prefix = site.env["AUTHSVC_REDIS_PREFIX"]
    assert redis.Redis.from_url(REDIS_URL).zcard(f"{prefix}lockout:account:bob") == 3


def test_a_disabled_user_is_refused_by_both_at_once(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    admin = a.session()
    created = admin.post(f"{a.url}/api/v1/users", json={"username": "carol",
                         "password": PASSWORD}, auth=ADMIN)
    assert created.status_code == 201
    assert b.session().get(f"{b.url}/api/v1/me", auth=("carol", PASSWORD)).status_code == 200
    assert admin.patch(f"{a.url}/api/v1/users/carol", json={"disabled": True},
                       auth=ADMIN).status_code == 200
    assert b.session().get(f"{b.url}/api/v1/me", auth=("carol", PASSWORD)).status_code == 401


def test_both_replicas_write_one_audit_trail(pair: tuple[Replica, Replica]) -> None:
    a, b = pair

    def issued_count(r: Replica) -> int:
        events = r.session().get(f"{r.url}/api/v1/audit", auth=ADMIN,
                                 params={"action": "token.issued", "actor": "alice"})
        assert events.status_code == 200
        return int(events.json()["total"])

    time.sleep(2.5)  # let the earlier tests' batched events land first
    before = issued_count(a)
    token_access(a, ("alice", PASSWORD), "repository:alice/x:pull")
    token_access(b, ("alice", PASSWORD), "repository:alice/x:pull")
    deadline = time.monotonic() + 10  # tokens issued are written in batches of one second
    while issued_count(a) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert issued_count(a) == issued_count(b) == before + 2

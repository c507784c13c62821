"""Wrong passwords sent all at once: no more of them are checked than the limit allows, on
every lockout store."""

import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any

import pytest
from flask import Flask

from authsvc.db.services import services_of
from tests.conftest import PASSWORD
from tests.test_lockout import REDIS_URL, redis_client

LIMIT = 10
PARALLEL = 30
REDIS_PREFIX = f"authsvc-test:{secrets.token_hex(6)}:"
#: bcrypt slow enough (cost 8) that the requests overlap, as they do at the default cost 12.
SETTINGS = {"LOCKOUT_ATTEMPTS": LIMIT, "LOCKOUT_ADDRESS_ATTEMPTS": 1000, "BCRYPT_ROUNDS": 8}
STORES = [
    pytest.param("memory", marks=pytest.mark.app_config(LOCKOUT_STORE="memory", **SETTINGS)),
    pytest.param("database", marks=pytest.mark.app_config(LOCKOUT_STORE="database",
                                                          **SETTINGS)),
    pytest.param("redis", marks=pytest.mark.app_config(
        LOCKOUT_STORE="redis", REDIS_URL=REDIS_URL, REDIS_PREFIX=REDIS_PREFIX, **SETTINGS)),
]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, app: Flask) -> Iterator[str]:
    """The store's name; afterwards the connections the threads opened are closed (a
    PostgreSQL server has only so many)."""
    state = services_of(app)
    if request.param != "redis":
        yield request.param
        state.accounts.reads.close()
        return
    with closing(redis_client()) as client:  # skips without Redis
        yield request.param
        for key in client.scan_iter(REDIS_PREFIX + "*"):
            client.delete(key)
    state.accounts.reads.close()
    state.throttle.store.client.close()


def all_at_once(app: Flask, request: Callable[[Any], Any], count: int) -> list[int]:
    """The statuses of ``count`` requests started together, each on a thread and test client of
    its own."""
    start = threading.Barrier(count)

    def one(_: int) -> int:
        client = app.test_client()
        start.wait()
        return int(request(client).status_code)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def token_login(user: str, password: str) -> Callable[[Any], Any]:
    return lambda client: client.get("/token?service=registry&scope=repository:alice/x:pull",
                                     auth=(user, password))


def test_parallel_wrong_passwords_get_at_most_the_limit_checked(
        app: Flask, make_user: Any, store: str) -> None:
    """Each of the logins is counted before its password is checked, so fewer than the limit
    may be checked at once (a refused one was counted for a moment); never more. The rest of
    the limit is left for later ones."""
    make_user("alice")
    statuses = all_at_once(app, token_login("alice", "wrong password"), PARALLEL)
    assert set(statuses) <= {401, 429}, statuses
    assert 1 <= statuses.count(401) <= LIMIT, statuses
    client = app.test_client()
    later = [token_login("alice", "wrong password")(client).status_code for _ in range(LIMIT)]
    assert statuses.count(401) + later.count(401) == LIMIT, (statuses, later)
    assert token_login("alice", PASSWORD)(client).status_code == 429


def test_parallel_wrong_passwords_of_unknown_users_are_limited_too(
        app: Flask, store: str) -> None:
    statuses = all_at_once(app, token_login("ghost", "wrong password"), PARALLEL)
    assert set(statuses) <= {401, 429}, statuses
    assert 1 <= statuses.count(401) <= LIMIT, statuses


def test_parallel_wrong_passwords_on_the_api_are_limited_too(
        app: Flask, make_user: Any, store: str) -> None:
    make_user("alice")
    statuses = all_at_once(app, lambda c: c.get("/api/v1/me", auth=("alice", "guess")), PARALLEL)
    assert set(statuses) <= {401, 429}, statuses
    assert 1 <= statuses.count(401) <= LIMIT, statuses


def test_parallel_right_passwords_work_and_a_success_clears_the_count(
        app: Flask, make_user: Any, store: str) -> None:
    make_user("alice")
    statuses = all_at_once(app, token_login("alice", PASSWORD), LIMIT // 2)
    assert statuses == [200] * (LIMIT // 2), statuses
    client = app.test_client()
    for _ in range(LIMIT - 1):
        assert token_login("alice", "wrong password")(client).status_code == 401
    assert token_login("alice", PASSWORD)(client).status_code == 200
    for _ in range(LIMIT):
        assert token_login("alice", "wrong password")(client).status_code == 401
    assert token_login("alice", PASSWORD)(client).status_code == 429

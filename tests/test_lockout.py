"""Brute-force defence: the throttle with each store, and the endpoints that use it."""

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.db.lockout import DatabaseStore, FailureStore, LoginThrottle, MemoryStore, RedisStore
from authsvc.db.models import db
from authsvc.db.services import services_of
from authsvc.errors import TooManyAttempts
from tests.conftest import PASSWORD

REDIS_URL = os.environ.get("AUTHSVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def redis_client() -> Any:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Redis at {REDIS_URL}: {e}")
    return client


@pytest.fixture(params=["memory", "database", "redis"])
def store(request: pytest.FixtureRequest, app: Flask) -> Iterator[FailureStore]:
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "database":
        with app.app_context():
            yield DatabaseStore(db.session, services_of(app).reads)
    else:
        client = redis_client()
        prefix = f"authsvc-test:{secrets.token_hex(6)}:"
        yield RedisStore(client, prefix)
        for key in client.scan_iter(prefix + "*"):
            client.delete(key)


def throttle(store: FailureStore, clock: Clock, account: int = 3, address: int = 5,
             ) -> LoginThrottle:
    return LoginThrottle(store, account_limit=account, address_limit=address, window=60,
                         clock=clock)


def test_account_is_locked_after_the_limit_and_freed_by_the_window(store: FailureStore) -> None:
    clock = Clock()
    guard = throttle(store, clock)
    for _ in range(3):
        guard.check("alice", "10.0.0.1")
        guard.failed("alice", "10.0.0.1")
        clock.now += 1
    with pytest.raises(TooManyAttempts) as info:
        guard.check("alice", "10.0.0.2")
    assert info.value.retry_after == 58
    guard.check("bob", "10.0.0.2")
    clock.now += 58
    guard.check("alice", "10.0.0.2")


def test_success_resets_the_account_but_not_the_address(store: FailureStore) -> None:
    clock = Clock()
    guard = throttle(store, clock, account=3, address=4)
    for _ in range(2):
        guard.failed("alice", "10.0.0.1")
    guard.succeeded("alice")
    for _ in range(2):
        guard.failed("alice", "10.0.0.1")
    guard.check("alice", "10.0.0.9")
    with pytest.raises(TooManyAttempts):
        guard.check("carol", "10.0.0.1")


def test_a_zero_limit_turns_that_limit_off(store: FailureStore) -> None:
    clock = Clock()
    guard = throttle(store, clock, account=0, address=0)
    for _ in range(10):
        guard.failed("alice", "10.0.0.1")
    guard.check("alice", "10.0.0.1")


def get_token(client: FlaskClient, user: str, password: str) -> Any:
    return client.get("/token?service=registry&scope=repository:alice/x:pull",
                      auth=(user, password))


@pytest.mark.app_config(LOCKOUT_ATTEMPTS=3, LOCKOUT_ADDRESS_ATTEMPTS=1000)
def test_token_endpoint_locks_an_account_even_for_the_right_password(
        client: FlaskClient, make_user: Any) -> None:
    make_user("alice")
    for _ in range(3):
        assert get_token(client, "alice", "wrong password").status_code == 401
    response = get_token(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 300
    assert response.json["errors"][0]["code"] == "TOOMANYREQUESTS"


@pytest.mark.app_config(LOCKOUT_ATTEMPTS=3, LOCKOUT_ADDRESS_ATTEMPTS=1000)
def test_unknown_users_are_counted_like_real_ones(client: FlaskClient, make_user: Any) -> None:
    make_user("alice")
    answers = [get_token(client, name, "wrong password") for name in ["ghost"] * 4 + ["alice"] * 4]
    ghost, alice = answers[:4], answers[4:]
    assert [r.status_code for r in ghost] == [r.status_code for r in alice] == [401] * 3 + [429]
    assert ghost[0].json == alice[0].json
    assert ghost[3].json == alice[3].json


@pytest.mark.app_config(LOCKOUT_ATTEMPTS=1000, LOCKOUT_ADDRESS_ATTEMPTS=5)
def test_one_address_trying_many_accounts_is_stopped(client: FlaskClient,
                                                     make_user: Any) -> None:
    make_user("alice")
    statuses = [get_token(client, f"user{i}", "guess").status_code for i in range(5)]
    assert statuses == [401] * 5
    assert get_token(client, "alice", PASSWORD).status_code == 429


@pytest.mark.app_config(LOCKOUT_ATTEMPTS=3)
def test_success_before_the_limit_resets_the_count(client: FlaskClient, make_user: Any) -> None:
    make_user("alice")
    for _ in range(2):
        get_token(client, "alice", "wrong password")
    assert get_token(client, "alice", PASSWORD).status_code == 200
    for _ in range(2):
        assert get_token(client, "alice", "wrong password").status_code == 401
    assert get_token(client, "alice", PASSWORD).status_code == 200


@pytest.mark.app_config(LOCKOUT_ATTEMPTS=2)
def test_oauth_password_grant_and_api_share_the_count(client: FlaskClient,
                                                      make_user: Any) -> None:
    make_user("alice")
    form = {"grant_type": "password", "username": "alice", "password": "wrong", "service":
            "registry", "client_id": "containerd-client"}
    assert client.post("/token", data=form).status_code == 401
    assert client.get("/api/v1/me", auth=("alice", "wrong")).status_code == 401
    locked = client.post("/token", data={**form, "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.json["error"] == "temporarily_unavailable"
    assert "Retry-After" in locked.headers
    api = client.get("/api/v1/me", auth=("alice", PASSWORD))
    assert api.status_code == 429 and "Retry-After" in api.headers


@pytest.mark.app_config(LOCKOUT_ADDRESS_ATTEMPTS=3)
def test_bad_refresh_tokens_count_against_the_address(client: FlaskClient) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": "authsvc_rt_guess",
            "service": "registry", "client_id": "docker"}
    assert [client.post("/token", data=form).status_code for _ in range(4)] == [401] * 3 + [429]


@pytest.mark.app_config(LOCKOUT_STORE="redis", REDIS_URL=REDIS_URL,
                        REDIS_PREFIX=f"authsvc-test:{secrets.token_hex(6)}:",
                        LOCKOUT_ATTEMPTS=2)
def test_redis_store_is_used_when_configured(app: Flask, client: FlaskClient,
                                             make_user: Any) -> None:
    client_redis = redis_client()
    make_user("alice")
    for _ in range(2):
        get_token(client, "alice", "wrong")
    prefix = app.config["REDIS_PREFIX"]
    assert client_redis.zcard(f"{prefix}lockout:account:alice") == 2
    assert get_token(client, "alice", PASSWORD).status_code == 429
    for key in client_redis.scan_iter(prefix + "*"):
        client_redis.delete(key)


@pytest.mark.app_config(LOCKOUT_ADDRESS_ATTEMPTS=3)
def test_a_valid_refresh_token_works_from_an_address_locked_by_guesses(
        client: FlaskClient, make_user: Any) -> None:
    """A refresh token cannot be guessed, so the lockout guards against wrong ones only."""
    make_user("alice")
    login = client.post("/token", data={
        "grant_type": "password", "username": "alice", "password": PASSWORD,
        "service": "registry", "client_id": "docker", "access_type": "offline"})
    form = {"grant_type": "refresh_token", "refresh_token": "authsvc_rt_guess",
            "service": "registry", "client_id": "docker"}
    assert [client.post("/token", data=form).status_code for _ in range(4)] == [401] * 3 + [429]
    valid = {**form, "refresh_token": login.json["refresh_token"]}
    assert client.post("/token", data=valid).status_code == 200
    assert client.post("/token", data=form).status_code == 429


# -- access tokens and robots: wrong passwords must not lock them out ----------------------------

WRONG_TOKEN = "authsvc_pat_" + "x" * 43


def robot_token(app: Flask, robot: str = "ci") -> str:
    """A robot account (no password) and an access token for it; the token's secret."""
    with app.app_context():
        state = services_of(app)
        state.accounts.create_user(robot, None, robot=True)
        _, secret = state.access_tokens.create(robot, "deploy", "write")
        db.session.remove()
    return str(secret)


def token_logins(client: FlaskClient, user: str, secret: str) -> list[int]:
    """The status of a login with ``secret`` on GET /token, the password grant, the API with
    Basic and the API with Bearer."""
    form = {"grant_type": "password", "username": user, "password": secret,
            "service": "registry", "client_id": "ci"}
    return [get_token(client, user, secret).status_code,
            client.post("/token", data=form).status_code,
            client.get("/api/v1/me", auth=(user, secret)).status_code,
            client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code]


@pytest.mark.app_config(LOCKOUT_ATTEMPTS=3, LOCKOUT_ADDRESS_ATTEMPTS=1000)
def test_wrong_passwords_do_not_lock_out_an_access_token(app: Flask,
                                                         client: FlaskClient) -> None:
    token = robot_token(app)
    statuses = [get_token(client, "ci", "wrong password").status_code for _ in range(5)]
    assert statuses == [401] * 3 + [429] * 2
    assert token_logins(client, "ci", token) == [200] * 4
    assert get_token(client, "ci", "wrong password").status_code == 429


@pytest.mark.app_config(LOCKOUT_ATTEMPTS=1000, LOCKOUT_ADDRESS_ATTEMPTS=3)
def test_wrong_access_tokens_count_against_the_address(app: Flask, client: FlaskClient) -> None:
    """As with refresh tokens: a valid token works from an address locked by guesses."""
    token = robot_token(app)
    assert token_logins(client, "ci", WRONG_TOKEN)[:3] == [401] * 3
    assert token_logins(client, "ci", WRONG_TOKEN) == [429] * 4
    assert get_token(client, "alice", "a password").status_code == 429
    assert token_logins(client, "ci", token) == [200] * 4


@pytest.mark.app_config(LOCKOUT_ATTEMPTS=3, LOCKOUT_ADDRESS_ATTEMPTS=1000)
def test_wrong_access_tokens_do_not_lock_the_accounts_password(
        client: FlaskClient, make_user: Any) -> None:
    make_user("alice")
    assert [get_token(client, "alice", WRONG_TOKEN).status_code
            for _ in range(5)] == [401] * 5
    assert get_token(client, "alice", PASSWORD).status_code == 200


# -- counting and checking in one step ----------------------------------------------------------

def test_attempts_are_counted_and_checked_in_one_step(store: FailureStore) -> None:
    """An attempt is counted before its secret is checked, so the limit counts it too."""
    clock = Clock()
    guard = throttle(store, clock, account=3, address=1000)
    attempts = [guard.attempt("alice", "10.0.0.1") for _ in range(3)]
    with pytest.raises(TooManyAttempts) as info:
        guard.attempt("alice", "10.0.0.2")
    assert info.value.retry_after == 61
    guard.succeeded("alice", attempts[0])
    guard.check("alice", "10.0.0.1")
    for _ in range(3):
        guard.attempt("alice", "10.0.0.1")
    with pytest.raises(TooManyAttempts):
        guard.check("alice", "10.0.0.1")


def test_a_refused_attempt_is_not_counted(store: FailureStore) -> None:
    clock = Clock()
    guard = throttle(store, clock, account=2, address=1000)
    guard.attempt("alice", None)
    clock.now += 30
    guard.attempt("alice", None)
    for _ in range(5):
        clock.now += 1
        with pytest.raises(TooManyAttempts):
            guard.attempt("alice", None)
    clock.now = 1_000_000.0 + 61  # the first attempt has left the window
    guard.attempt("alice", None)


def test_success_withdraws_its_own_address_attempt_only(store: FailureStore) -> None:
    clock = Clock()
    guard = throttle(store, clock, account=1000, address=3)
    guard.attempt("bob", "10.0.0.1")
    guard.attempt("bob", "10.0.0.1")
    guard.succeeded("alice", guard.attempt("alice", "10.0.0.1"))
    guard.attempt("carol", "10.0.0.1")
    with pytest.raises(TooManyAttempts):
        guard.attempt("dave", "10.0.0.1")


@pytest.mark.app_config(LOCKOUT_ATTEMPTS=1000, LOCKOUT_ADDRESS_ATTEMPTS=3)
def test_a_right_password_leaves_no_count_behind(client: FlaskClient, make_user: Any) -> None:
    """The login was counted before its password was checked; being right withdraws it."""
    make_user("alice")
    assert get_token(client, "alice", PASSWORD).status_code == 200
    statuses = [get_token(client, f"user{i}", "guess").status_code for i in range(4)]
    assert statuses == [401] * 3 + [429]

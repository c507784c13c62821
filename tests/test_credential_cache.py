"""Repeated Basic auth skips bcrypt, but never outlives a password change, a disabled user or
its time to live, and never holds the password; logins sent at once check it once, and one
that is always in use is renewed before it expires."""

import pickle
import threading
from typing import Any

import pytest
from flask import Flask

from authsvc.core.credential_cache import CredentialCache, Found
from authsvc.db.services import Services
from authsvc.errors import AuthenticationFailed


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entry_counts_only_for_the_same_password_hash_and_time() -> None:
    clock = Clock()
    cache = CredentialCache(60, clock=clock)
    cache.remember("alice", "pw-one", "$2b$hash-1")
    assert cache.lookup("alice", "pw-one", "$2b$hash-1") is Found.VERIFIED
    assert cache.lookup("alice", "pw-two", "$2b$hash-1") is Found.NOTHING
    assert cache.lookup("bob", "pw-one", "$2b$hash-1") is Found.NOTHING
    assert cache.lookup("alice", "pw-one", "$2b$hash-2") is Found.NOTHING
    cache.remember("alice", "pw-one", "$2b$hash-1")
    clock.now += 60
    assert cache.lookup("alice", "pw-one", "$2b$hash-1") is Found.NOTHING


def test_one_lookup_near_the_end_renews_while_the_others_use_the_entry() -> None:
    clock = Clock()
    cache = CredentialCache(60, clock=clock)
    cache.remember("alice", "pw", "h")
    clock.now += 44  # before the last quarter
    assert cache.lookup("alice", "pw", "h") is Found.VERIFIED
    clock.now += 2
    assert [cache.lookup("alice", "pw", "h") for _ in range(3)] == [
        Found.RENEW, Found.VERIFIED, Found.VERIFIED]
    clock.now += 4  # the renewal never came back (an error): someone else is told to renew
    assert [cache.lookup("alice", "pw", "h") for _ in range(2)] == [
        Found.RENEW, Found.VERIFIED]
    cache.remember("alice", "pw", "h")
    clock.now += 44  # 94 s after the first check: counts, from the renewal
    assert cache.lookup("alice", "pw", "h") is Found.VERIFIED


def test_zero_ttl_disables_and_size_is_bounded() -> None:
    off = CredentialCache(0)
    off.remember("alice", "pw", "h")
    assert off.lookup("alice", "pw", "h") is Found.NOTHING
    small = CredentialCache(60, max_entries=2)
    for name in ("a", "b", "c"):
        small.remember(name, "pw", "h")
    assert [small.lookup(n, "pw", "h") for n in ("a", "b", "c")] == [
        Found.NOTHING, Found.VERIFIED, Found.VERIFIED]


def test_the_password_is_never_held() -> None:
    cache = CredentialCache(60)
    cache.remember("alice", "correct horse battery", "$2b$hash")
    stored = cache._entries._entries  # the TTL cache's own entries
    dumped = pickle.dumps(dict(stored)) + repr(cache.__dict__).encode()
    assert b"correct horse battery" not in dumped


def count_hash_checks(state: Services, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    context = state.hasher.context
    real = context.verify_and_update

    def spy(secret: str, stored: str) -> Any:
        calls[0] += 1
        return real(secret, stored)

    monkeypatch.setattr(context, "verify_and_update", spy)
    return calls


def test_repeated_login_skips_bcrypt_until_the_password_changes(
        state: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    state.accounts.create_user("alice", "first-password")
    calls = count_hash_checks(state, monkeypatch)
    for _ in range(5):
        state.accounts.authenticate("alice", "first-password")
    assert calls[0] == 1
    state.accounts.set_password("alice", "second-password")
    with pytest.raises(AuthenticationFailed):
        state.accounts.authenticate("alice", "first-password")
    state.accounts.authenticate("alice", "second-password")
    assert calls[0] == 3


def test_a_disabled_user_is_refused_at_once_despite_the_cache(state: Services) -> None:
    state.accounts.create_user("alice", "first-password")
    state.accounts.authenticate("alice", "first-password")
    state.accounts.set_disabled("alice")
    with pytest.raises(AuthenticationFailed):
        state.accounts.authenticate("alice", "first-password")


@pytest.mark.app_config(CREDENTIAL_CACHE_SECONDS=0)
def test_the_cache_can_be_turned_off(state: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    state.accounts.create_user("alice", "first-password")
    calls = count_hash_checks(state, monkeypatch)
    for _ in range(3):
        state.accounts.authenticate("alice", "first-password")
    assert calls[0] == 3


def test_logins_sent_at_once_check_the_password_once(
        app: Flask, state: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """A docker push asks for several tokens at once with the same credentials: one bcrypt,
    the others wait for its result. A wrong password is still checked (and refused) each time."""
    state.accounts.create_user("alice", "first-password")
    calls = count_hash_checks(state, monkeypatch)

    def at_once(password: str) -> list[str]:
        start, results = threading.Barrier(6), []

        def login() -> None:
            with app.app_context():
                start.wait()
                try:
                    results.append(state.accounts.authenticate("alice", password).name or "")
                except AuthenticationFailed:
                    results.append("refused")

        threads = [threading.Thread(target=login) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    assert at_once("first-password") == ["alice"] * 6
    assert calls[0] == 1
    assert at_once("wrong-password") == ["refused"] * 6
    assert calls[0] == 7


def test_a_login_always_in_use_is_renewed_before_it_expires(
        state: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    state.accounts.cache = CredentialCache(60, clock=clock)
    state.accounts.create_user("alice", "first-password")
    calls = count_hash_checks(state, monkeypatch)
    state.accounts.authenticate("alice", "first-password")
    clock.now += 50
    for _ in range(3):  # one of them renews
        state.accounts.authenticate("alice", "first-password")
    assert calls[0] == 2
    clock.now += 30  # 80 s after the first check, 30 after the renewal
    state.accounts.authenticate("alice", "first-password")
    assert calls[0] == 2

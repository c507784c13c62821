"""Repeated Basic auth skips bcrypt, but never outlives a password change, a disabled user or
its time to live, and never holds the password."""

import pickle
from typing import Any

import pytest

from authsvc.core.credential_cache import CredentialCache
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
    assert cache.verified("alice", "pw-one", "$2b$hash-1")
    assert not cache.verified("alice", "pw-two", "$2b$hash-1")
    assert not cache.verified("bob", "pw-one", "$2b$hash-1")
    assert not cache.verified("alice", "pw-one", "$2b$hash-2")
    cache.remember("alice", "pw-one", "$2b$hash-1")
    clock.now += 60
    assert not cache.verified("alice", "pw-one", "$2b$hash-1")


def test_zero_ttl_disables_and_size_is_bounded() -> None:
    off = CredentialCache(0)
    off.remember("alice", "pw", "h")
    assert not off.verified("alice", "pw", "h")
    small = CredentialCache(60, max_entries=2)
    for name in ("a", "b", "c"):
        small.remember(name, "pw", "h")
    assert [small.verified(n, "pw", "h") for n in ("a", "b", "c")] == [False, True, True]


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

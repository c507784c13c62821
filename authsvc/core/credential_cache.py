"""A short-lived memory of credentials that verified, so repeated Basic auth for the same user
and password does not rerun bcrypt (Docker sends Basic auth on every token request).

An entry is keyed by the user and a MAC of the password (keyed BLAKE2b) under a random
per-process key; it holds the stored hash it was verified against, never the password. It only
counts while the user's stored hash is unchanged, so a new password invalidates it at once; the
caller checks that the user is still enabled on every request.

Docker sends several token requests at once with the same credentials (a push asks for each
layer's repository), and keeps sending them as long as it works. Two things keep those from
all running bcrypt at the same moment:

- ``one_check_at_a_time``: while one thread checks a user and password with bcrypt, the other
  threads with the same pair wait for it, then find its result here (a wrong password is not
  remembered, so each of them then checks it, and is counted, as before);
- renewal: in the last ``RENEW_FRACTION`` of an entry's life, the first lookup is told to check
  again (and ``remember`` the pair anew) while the others keep using the entry until it
  expires; a user who logs in all the time never meets an expired entry, and only that one
  request waits for bcrypt.
"""

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum

from authsvc.core.ttl_cache import TTLCache

#: The end of an entry's life, as a fraction of it, in which one lookup renews it.
RENEW_FRACTION = 0.25


class Found(Enum):
    """What ``CredentialCache.lookup`` found for a user and password."""

    #: Verified less than the ttl ago against the same stored hash: no bcrypt.
    VERIFIED = "verified"
    #: The same, near its end: this caller checks it with bcrypt again (see the module).
    RENEW = "renew"
    #: Nothing that counts: check with bcrypt.
    NOTHING = "nothing"


class CredentialCache:
    def __init__(self, ttl: float, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._key = secrets.token_bytes(32)
        self.clock = clock
        #: (user, MAC of the password) -> the stored hash it was verified against, and when.
        self._entries: TTLCache[tuple[str, bytes], tuple[str, float]] = TTLCache(
            ttl, max_entries, clock)
        #: Keys whose renewal a lookup was told to do, and when (see the module).
        self._renewing: dict[tuple[str, bytes], float] = {}
        #: Keys being checked with bcrypt: a lock, and how many threads hold or wait for it.
        self._checks: dict[tuple[str, bytes], tuple[threading.Lock, list[int]]] = {}
        self._lock = threading.Lock()

    def _mac(self, username: str, password: str) -> bytes:
        message = username.encode("utf-8", "surrogateescape") + b"\0" + password.encode(
            "utf-8", "surrogateescape")
        # Keyed BLAKE2b is a MAC by design (RFC 7693), and CPython's own: a third of what
        # an HMAC through OpenSSL 3 costs (its algorithm fetch on every call).
        return hashlib.blake2b(message, key=self._key, digest_size=32).digest()

    def lookup(self, username: str, password: str, stored_hash: str) -> Found:
        """Whether this password was verified against ``stored_hash`` less than ttl ago;
        RENEW, for one caller, when that was in the last ``RENEW_FRACTION`` of the ttl (the
        next callers are told VERIFIED, until the renewal is ``remember``-ed or, if it went
        wrong, a while later told RENEW again)."""
        if not self._entries.enabled:
            return Found.NOTHING
        key = (username, self._mac(username, password))
        found = self._entries.get(key)
        if found is None:
            return Found.NOTHING
        cached_hash, verified_at = found
        if not hmac.compare_digest(cached_hash, stored_hash):
            self._entries.discard(key)  # verified against a hash that has changed since
            return Found.NOTHING
        now, ttl = self.clock(), self._entries.ttl
        if now - verified_at < ttl * (1 - RENEW_FRACTION):
            return Found.VERIFIED
        with self._lock:
            claimed = self._renewing.get(key)
            if claimed is not None and now - claimed < ttl * RENEW_FRACTION / 4:
                return Found.VERIFIED
            self._renewing[key] = now
        return Found.RENEW

    def remember(self, username: str, password: str, stored_hash: str) -> None:
        """Note that ``password`` verified against ``stored_hash`` just now."""
        if self._entries.enabled:
            key = (username, self._mac(username, password))
            self._entries.put(key, (stored_hash, self.clock()))
            with self._lock:
                self._renewing.pop(key, None)

    @contextmanager
    def one_check_at_a_time(self, username: str, password: str) -> Iterator[None]:
        """Held while this user and password are checked with bcrypt: another thread that
        checks the same pair waits here until this one is done."""
        if not self._entries.enabled:
            yield
            return
        key = (username, self._mac(username, password))
        with self._lock:
            lock, holders = self._checks.setdefault(key, (threading.Lock(), [0]))
            holders[0] += 1
        try:
            with lock:
                yield
        finally:
            with self._lock:
                holders[0] -= 1
                if not holders[0]:
                    del self._checks[key]

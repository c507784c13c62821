"""A short-lived memory of credentials that verified, so repeated Basic auth for the same user
and password does not rerun bcrypt (Docker sends Basic auth on every token request).

An entry is keyed by the user and an HMAC of the password under a random per-process key; it
holds the stored hash it was verified against, never the password. It only counts while the
user's stored hash is unchanged, so a new password invalidates it at once; the caller checks
that the user is still enabled on every request.
"""

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class CredentialCache:
    def __init__(self, ttl: float, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[tuple[str, bytes], tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _mac(self, username: str, password: str) -> bytes:
        message = username.encode("utf-8", "surrogateescape") + b"\0" + password.encode(
            "utf-8", "surrogateescape")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def verified(self, username: str, password: str, stored_hash: str) -> bool:
        """True when this password was verified against ``stored_hash`` less than ttl ago."""
        if self.ttl <= 0:
            return False
        key = (username, self._mac(username, password))
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            cached_hash, expires = entry
            if expires <= self.clock() or not hmac.compare_digest(cached_hash, stored_hash):
                del self._entries[key]
                return False
            self._entries.move_to_end(key)
            return True

    def remember(self, username: str, password: str, stored_hash: str) -> None:
        if self.ttl <= 0:
            return
        key = (username, self._mac(username, password))
        with self._lock:
            self._entries[key] = (stored_hash, self.clock() + self.ttl)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

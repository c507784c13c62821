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
import time
from collections.abc import Callable

from authsvc.core.ttl_cache import TTLCache


class CredentialCache:
    def __init__(self, ttl: float, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._key = secrets.token_bytes(32)
        #: (user, HMAC of the password) -> the stored hash it was verified against.
        self._entries: TTLCache[tuple[str, bytes], str] = TTLCache(ttl, max_entries, clock)

    def _mac(self, username: str, password: str) -> bytes:
        message = username.encode("utf-8", "surrogateescape") + b"\0" + password.encode(
            "utf-8", "surrogateescape")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def verified(self, username: str, password: str, stored_hash: str) -> bool:
        """True when this password was verified against ``stored_hash`` less than ttl ago."""
        if not self._entries.enabled:
            return False
        key = (username, self._mac(username, password))
        cached_hash = self._entries.get(key)
        if cached_hash is None:
            return False
        if not hmac.compare_digest(cached_hash, stored_hash):
            self._entries.discard(key)  # verified against a hash that has changed since
            return False
        return True

    def remember(self, username: str, password: str, stored_hash: str) -> None:
        """Note that ``password`` verified against ``stored_hash`` just now."""
        if self._entries.enabled:
            self._entries.put((username, self._mac(username, password)), stored_hash)

"""A small thread-safe memory of values that count for a while: the signed-token cache and the
credential cache both keep their entries in one.

Each entry counts for ``ttl`` seconds of ``clock`` from when it was stored (or from the moment
the caller says it was made); at most ``max_entries`` are kept, the least recently used
dropped first. A ``ttl`` of 0 or less keeps nothing.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(self, ttl: float, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        #: Whether anything is kept at all (``ttl`` > 0).
        self.enabled = ttl > 0
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value stored under ``key`` while it counts, else None (an expired entry is
        dropped)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= self.clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: K, value: V, made_at: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds from ``made_at`` (by ``clock``;
        default: now), replacing an earlier one; the least recently used go past
        ``max_entries``."""
        if not self.enabled:
            return
        expires = (self.clock() if made_at is None else made_at) + self.ttl
        with self._lock:
            self._entries[key] = (value, expires)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        """Forget ``key`` if it is stored."""
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        """How many entries are stored, expired ones that were not looked up since included."""
        return len(self._entries)

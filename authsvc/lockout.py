"""Brute-force defence: failed logins counted per account and per client address in a sliding
window. Past the limit, logins are refused with 429 and ``Retry-After`` until the oldest counted
failure leaves the window. A success clears the account's count.

The counts live in a store shared by every replica: Redis when ``REDIS_URL`` is set, otherwise
the database; ``memory`` is for a single process only.
"""

import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy import bindparam, delete, func, or_, select
from sqlalchemy.orm import scoped_session

from authsvc.errors import TooManyAttempts
from authsvc.models import LoginFailure
from authsvc.reads import Reads

#: Failures counted for one or two keys (``second`` repeats ``first`` when there is one).
WINDOWS = (select(LoginFailure.key, func.count(LoginFailure.id), func.min(LoginFailure.at))
           .where(or_(LoginFailure.key == bindparam("first"),
                      LoginFailure.key == bindparam("second")),
                  LoginFailure.at >= bindparam("since"))
           .group_by(LoginFailure.key))


class FailureStore(Protocol):
    def windows(self, keys: Sequence[str], since: float) -> dict[str, tuple[int, float]]:
        """Failures at or after ``since`` of those ``keys`` (one or two) that have any: their
        count and the oldest time."""

    def add(self, key: str, at: float, since: float) -> None:
        """Count a failure of ``key`` at ``at``; failures before ``since`` may be dropped."""

    def clear(self, key: str) -> None: ...


class MemoryStore:
    """In-process counts: correct for one process only."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def windows(self, keys: Sequence[str], since: float) -> dict[str, tuple[int, float]]:
        found = {}
        with self._lock:
            for key in keys:
                times = [t for t in self._failures.get(key, ()) if t >= since]
                if times:
                    found[key] = (len(times), min(times))
        return found

    def add(self, key: str, at: float, since: float) -> None:
        with self._lock:
            times = self._failures[key]
            times.append(at)
            while times and times[0] < since:
                times.popleft()

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class DatabaseStore:
    """Counts in the ``login_failures`` table, shared by replicas on one database."""

    def __init__(self, session: scoped_session,  # type: ignore[type-arg]
                 reads: Reads | None = None) -> None:
        self.session = session
        self.reads = reads or Reads(session)

    def windows(self, keys: Sequence[str], since: float) -> dict[str, tuple[int, float]]:
        if not keys:
            return {}
        rows: Sequence[Any] = self.reads.all(
            WINDOWS, {"first": keys[0], "second": keys[-1], "since": since})
        return {key: (int(count), float(oldest)) for key, count, oldest in rows}

    def add(self, key: str, at: float, since: float) -> None:
        self.session.execute(delete(LoginFailure).where(LoginFailure.key == key,
                                                        LoginFailure.at < since))
        self.session.add(LoginFailure(key=key, at=at))
        self.session.commit()

    def clear(self, key: str) -> None:
        self.session.execute(delete(LoginFailure).where(LoginFailure.key == key))
        self.session.commit()


class RedisStore:
    """Counts in Redis sorted sets (score = time), shared by every replica."""

    def __init__(self, client: Any, prefix: str = "authsvc:lockout:") -> None:
        self.client = client
        self.prefix = prefix

    def windows(self, keys: Sequence[str], since: float) -> dict[str, tuple[int, float]]:
        pipe = self.client.pipeline()
        for key in keys:
            pipe.zcount(self.prefix + key, since, "+inf")
            pipe.zrangebyscore(self.prefix + key, since, "+inf", start=0, num=1, withscores=True)
        answers = pipe.execute()
        found = {}
        for key, count, oldest in zip(keys, answers[::2], answers[1::2], strict=True):
            if count and oldest:
                found[key] = (int(count), float(oldest[0][1]))
        return found

    def add(self, key: str, at: float, since: float) -> None:
        name = self.prefix + key
        pipe = self.client.pipeline()
        pipe.zremrangebyscore(name, "-inf", f"({since}")
        pipe.zadd(name, {f"{at}:{secrets.token_hex(8)}": at})
        pipe.expire(name, max(1, int(at - since) + 1))
        pipe.execute()

    def clear(self, key: str) -> None:
        self.client.delete(self.prefix + key)


class LoginThrottle:
    """Decides whether a login may be tried, and counts the outcome.

    ``account_limit`` and ``address_limit`` are failures per ``window`` seconds; 0 turns that
    limit off.
    """

    def __init__(self, store: FailureStore, *, account_limit: int, address_limit: int,
                 window: int, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.limits = {"account": account_limit, "address": address_limit}
        self.window = window
        self.clock = clock

    def _keys(self, username: str | None, address: str | None) -> list[tuple[str, str]]:
        keys = []
        if username and self.limits["account"]:
            keys.append(("account", f"account:{username[:300]}"))
        if address and self.limits["address"]:
            keys.append(("address", f"address:{address[:64]}"))
        return keys

    def check(self, username: str | None, address: str | None) -> bool:
        """Raise TooManyAttempts while the account or the address is over its limit.

        Returns whether the account has failures in the window: only then does a successful
        login have a count to clear (``succeeded``).
        """
        now = self.clock()
        keys = self._keys(username, address)
        counted = self.store.windows([key for _, key in keys], now - self.window)
        for kind, key in keys:
            count, oldest = counted.get(key, (0, now))
            if count >= self.limits[kind]:
                raise TooManyAttempts(max(1, int(oldest + self.window - now) + 1))
        return any(kind == "account" and key in counted for kind, key in keys)

    def failed(self, username: str | None, address: str | None) -> None:
        now = self.clock()
        for _, key in self._keys(username, address):
            self.store.add(key, now, now - self.window)

    def succeeded(self, username: str) -> None:
        for _, key in self._keys(username, None):
            self.store.clear(key)

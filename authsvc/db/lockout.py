"""Brute-force defence: failed logins counted per account and per client address in a sliding
window. Past the limit, logins are refused with 429 and ``Retry-After`` until the oldest counted
failure leaves the window. A success clears the account's count.

The counts live in a store shared by every replica: Redis when ``REDIS_URL`` is set, otherwise
the database; ``memory`` is for a single process only.

A login whose secret is slow to check (a password: bcrypt) is counted *before* the check, in
the same step that reads the count (``LoginThrottle.attempt``), so logins sent all at once
cannot all pass a check that none of them has been counted in yet. A success withdraws it.
"""

import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import bindparam, delete, func, or_, select

from authsvc.db.models import DbSession, LoginFailure
from authsvc.db.reads import Reads
from authsvc.errors import TooManyAttempts
from authsvc.observability.metrics import metrics

#: Failures counted for one or two keys (``second`` repeats ``first`` when there is one).
WINDOWS = (select(LoginFailure.key, func.count(LoginFailure.id), func.min(LoginFailure.at))
           .where(or_(LoginFailure.key == bindparam("first"),
                      LoginFailure.key == bindparam("second")),
                  LoginFailure.at >= bindparam("since"))
           .group_by(LoginFailure.key))


#: What a store found for one key: the count in the window and the oldest time counted.
Windows = dict[str, tuple[int, float]]


class FailureStore(Protocol):
    def windows(self, keys: Sequence[str], since: float) -> Windows:
        """Failures at or after ``since`` of those ``keys`` (one or two) that have any: their
        count and the oldest time."""

    def add(self, key: str, at: float, since: float) -> None:
        """Count a failure of ``key`` at ``at``; failures before ``since`` may be dropped."""

    def record(self, keys: Sequence[str], at: float, since: float) -> tuple[str, Windows]:
        """Count an attempt of each of ``keys`` at ``at`` and read their windows (as
        ``windows``), the attempt included, in one atomic step: of attempts recorded at once,
        each one's count includes every one recorded before it. Returns an id of the attempt
        for ``withdraw``, and the windows."""

    def withdraw(self, keys: Sequence[str], attempt: str) -> None:
        """Stop counting the attempt ``record`` returned, for each of ``keys``."""

    def clear(self, key: str) -> None: ...


class MemoryStore:
    """In-process counts: correct for one process only."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[tuple[float, str]]] = defaultdict(deque)
        self._lock = threading.Lock()

    def windows(self, keys: Sequence[str], since: float) -> Windows:
        with self._lock:
            return self._windows(keys, since)

    def _windows(self, keys: Sequence[str], since: float) -> Windows:
        found = {}
        for key in keys:
            times = [t for t, _ in self._failures.get(key, ()) if t >= since]
            if times:
                found[key] = (len(times), min(times))
        return found

    def add(self, key: str, at: float, since: float) -> None:
        with self._lock:
            self._add(key, at, since, "")

    def _add(self, key: str, at: float, since: float, attempt: str) -> None:
        entries = self._failures[key]
        entries.append((at, attempt))
        while entries and entries[0][0] < since:
            entries.popleft()

    def record(self, keys: Sequence[str], at: float, since: float) -> tuple[str, Windows]:
        attempt = secrets.token_hex(8)
        with self._lock:
            for key in keys:
                self._add(key, at, since, attempt)
            return attempt, self._windows(keys, since)

    def withdraw(self, keys: Sequence[str], attempt: str) -> None:
        with self._lock:
            for key in keys:
                entries = self._failures.get(key)
                if entries is not None:
                    self._failures[key] = deque(e for e in entries if e[1] != attempt)

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class DatabaseStore:
    """Counts in the ``login_failures`` table, shared by replicas on one database."""

    def __init__(self, session: DbSession, reads: Reads) -> None:
        self.session = session
        self.reads = reads

    def windows(self, keys: Sequence[str], since: float) -> Windows:
        if not keys:
            return {}
        rows: Sequence[Any] = self.reads.all(
            WINDOWS, {"first": keys[0], "second": keys[-1], "since": since})
        return {key: (int(count), float(oldest)) for key, count, oldest in rows}

    def add(self, key: str, at: float, since: float) -> None:
        self._insert([key], at, since)

    def _insert(self, keys: Sequence[str], at: float, since: float) -> list[int]:
        """Insert a row per key (and drop the keys' rows that left the window) and commit.
        Returns the new rows' ids (read before the commit: another login may delete them)."""
        for key in sorted(keys):  # the same order everywhere: no deadlock between two logins
            self.session.execute(delete(LoginFailure).where(LoginFailure.key == key,
                                                            LoginFailure.at < since))
        rows = [LoginFailure(key=key, at=at) for key in keys]
        self.session.add_all(rows)
        self.session.flush()
        ids = [row.id for row in rows]
        self.session.commit()
        return ids

    def record(self, keys: Sequence[str], at: float, since: float) -> tuple[str, Windows]:
        """Insert and commit first, then count: the count (read on a connection of its own,
        after the commit) sees every attempt committed before it, its own included."""
        ids = self._insert(keys, at, since)
        return ",".join(map(str, ids)), self.windows(keys, since)

    def withdraw(self, keys: Sequence[str], attempt: str) -> None:
        ids = [int(part) for part in attempt.split(",") if part]
        self.session.execute(delete(LoginFailure).where(LoginFailure.id.in_(ids)))
        self.session.commit()

    def clear(self, key: str) -> None:
        self.session.execute(delete(LoginFailure).where(LoginFailure.key == key))
        self.session.commit()


class RedisStore:
    """Counts in Redis sorted sets (score = time), shared by every replica."""

    def __init__(self, client: Any, prefix: str = "authsvc:lockout:") -> None:
        self.client = client
        self.prefix = prefix

    def windows(self, keys: Sequence[str], since: float) -> Windows:
        pipe = self.client.pipeline()
        self._read(pipe, keys, since)
        return self._found(keys, pipe.execute())

    def _read(self, pipe: Any, keys: Sequence[str], since: float) -> None:
        for key in keys:
            pipe.zcount(self.prefix + key, since, "+inf")
            pipe.zrangebyscore(self.prefix + key, since, "+inf", start=0, num=1, withscores=True)

    @staticmethod
    def _found(keys: Sequence[str], answers: Sequence[Any]) -> Windows:
        found = {}
        for key, count, oldest in zip(keys, answers[::2], answers[1::2], strict=True):
            if count and oldest:
                found[key] = (int(count), float(oldest[0][1]))
        return found

    def _add(self, pipe: Any, key: str, at: float, since: float, member: str) -> None:
        name = self.prefix + key
        pipe.zremrangebyscore(name, "-inf", f"({since}")
        pipe.zadd(name, {member: at})
        pipe.expire(name, max(1, int(at - since) + 1))

    def add(self, key: str, at: float, since: float) -> None:
        pipe = self.client.pipeline()
        self._add(pipe, key, at, since, f"{at}:{secrets.token_hex(8)}")
        pipe.execute()

    def record(self, keys: Sequence[str], at: float, since: float) -> tuple[str, Windows]:
        """One MULTI/EXEC transaction: the additions and the counts."""
        member = f"{at}:{secrets.token_hex(8)}"
        pipe = self.client.pipeline(transaction=True)
        for key in keys:
            self._add(pipe, key, at, since, member)
        self._read(pipe, keys, since)
        answers = pipe.execute()
        return member, self._found(keys, answers[3 * len(keys):])

    def withdraw(self, keys: Sequence[str], attempt: str) -> None:
        pipe = self.client.pipeline()
        for key in keys:
            pipe.zrem(self.prefix + key, attempt)
        pipe.execute()

    def clear(self, key: str) -> None:
        self.client.delete(self.prefix + key)


@dataclass(frozen=True)
class Attempt:
    """A login counted before its secret was checked (``LoginThrottle.attempt``)."""

    keys: tuple[str, ...]
    id: str


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
        self._refuse_over(keys, counted, now, 0)
        return any(kind == "account" and key in counted for kind, key in keys)

    def _refuse_over(self, keys: list[tuple[str, str]], counted: Windows, now: float,
                     included: int) -> None:
        """Raise TooManyAttempts when a key has more than its limit counted, besides the
        ``included`` attempts (0 or 1) that are in ``counted`` already."""
        for kind, key in keys:
            count, oldest = counted.get(key, (0, now))
            if count - included >= self.limits[kind]:
                metrics().lockouts[kind].inc()
                raise TooManyAttempts(max(1, int(oldest + self.window - now) + 1))

    def attempt(self, username: str | None, address: str | None) -> Attempt:
        """Count a login as failed before its secret is checked, and check the limits with it
        counted, in one atomic step of the store. Returns the attempt, for ``succeeded`` when
        the secret is right; a wrong one stays counted.

        Raises TooManyAttempts (the attempt withdrawn: a refused login is not counted) when
        the account or the address is over its limit.
        """
        now = self.clock()
        keys = self._keys(username, address)
        names = tuple(key for _, key in keys)
        if not names:
            return Attempt((), "")
        attempt, counted = self.store.record(names, now, now - self.window)
        try:
            self._refuse_over(keys, counted, now, 1)
        except TooManyAttempts:
            self.store.withdraw(names, attempt)
            raise
        return Attempt(names, attempt)

    def failed(self, username: str | None, address: str | None) -> None:
        now = self.clock()
        for _, key in self._keys(username, address):
            self.store.add(key, now, now - self.window)

    def succeeded(self, username: str, attempt: Attempt | None = None) -> None:
        """Clear the account's count; withdraw ``attempt`` (from ``attempt``) from the
        address's."""
        accounts = [key for _, key in self._keys(username, None)]
        for key in accounts:
            self.store.clear(key)
        if attempt is not None:
            others = [key for key in attempt.keys if key not in accounts]
            if others and attempt.id:
                self.store.withdraw(others, attempt.id)

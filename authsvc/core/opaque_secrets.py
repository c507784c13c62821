"""What refresh tokens and access tokens share: the stored hash of a random secret, the clock
they read (injected, so tests set the time), and the UTC timestamps SQLite hands back without a
zone. ``as_utc`` is the one place that gives such a timestamp its zone."""

import hashlib
from datetime import UTC, datetime
from typing import overload


def secret_hash(secret: str) -> str:
    """SHA-256 of the secret: enough for 256 random bits, and fast on every request."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def utc_now() -> datetime:
    """The current time in UTC: the default clock of the token services."""
    return datetime.now(UTC)


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """``moment`` with its zone: stored timestamps are UTC, SQLite returns them naive."""
    if moment is None or moment.tzinfo:
        return moment
    return moment.replace(tzinfo=UTC)

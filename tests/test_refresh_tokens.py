"""Refresh tokens on a clock the test sets: a token works until exactly its lifetime, is bound
to its service and client, and notes its last use at most once a minute."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from authsvc.core.opaque_secrets import as_utc
from authsvc.core.policy import Subject
from authsvc.db.models import db
from authsvc.db.refresh_tokens import LAST_USED_PRECISION, RefreshTokens
from authsvc.db.services import Services
from authsvc.errors import AuthenticationFailed

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A settable ``now`` for the token services."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def tokens(state: Services, clock: Clock) -> Iterator[RefreshTokens]:
    state.accounts.create_user("alice", "alice-password")
    yield RefreshTokens(db.session, state.audit, state.reads, lifetime_days=90, now=clock)


def test_a_token_works_until_exactly_its_lifetime(tokens: RefreshTokens, clock: Clock) -> None:
    secret = tokens.issue("alice", "registry", "docker")
    clock.at = START + timedelta(days=90) - timedelta(seconds=1)
    assert tokens.redeem(secret, "registry", "docker") == Subject("alice")
    clock.at = START + timedelta(days=90)
    with pytest.raises(AuthenticationFailed):
        tokens.redeem(secret, "registry", "docker")


def test_the_stored_times_are_the_clocks(tokens: RefreshTokens) -> None:
    tokens.issue("alice", "registry", "docker")
    (row,) = tokens.list_for("alice")
    assert as_utc(row.created_at) == START
    assert as_utc(row.expires_at) == START + timedelta(days=90)


@pytest.mark.parametrize(("service", "client_id"), [("other", "docker"), ("registry", "ci")])
def test_a_token_is_bound_to_its_service_and_client(tokens: RefreshTokens, service: str,
                                                    client_id: str) -> None:
    secret = tokens.issue("alice", "registry", "docker")
    with pytest.raises(AuthenticationFailed):
        tokens.redeem(secret, service, client_id)


def test_last_use_is_written_at_most_once_a_minute(tokens: RefreshTokens,
                                                   clock: Clock) -> None:
    secret = tokens.issue("alice", "registry", "docker")

    def last_used() -> datetime | None:
        db.session.expire_all()
        return as_utc(tokens.list_for("alice")[0].last_used_at)

    tokens.redeem(secret, "registry", "docker")
    assert last_used() == START
    clock.at = START + LAST_USED_PRECISION - timedelta(seconds=1)
    tokens.redeem(secret, "registry", "docker")
    assert last_used() == START
    clock.at = START + LAST_USED_PRECISION
    tokens.redeem(secret, "registry", "docker")
    assert last_used() == START + LAST_USED_PRECISION

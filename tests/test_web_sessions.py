"""Web sessions: a hashed secret, an idle and an absolute timeout on an injected clock, and
revocation by sign-out, a password change, disabling and deleting the user."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from authsvc.core.opaque_secrets import secret_hash
from authsvc.db.models import AuditEvent, WebSession
from authsvc.db.services import Services
from authsvc.db.web_sessions import PREFIX, WebSessions
from authsvc.errors import NotFound

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sessions(state: Services, clock: Clock, make_user: Callable[..., str]) -> WebSessions:
    make_user("alice")
    make_user("bob")
    return WebSessions(state.web_sessions.session, state.audit, idle_seconds=1800,
                       max_seconds=43200, now=clock)


def test_only_a_hash_of_the_secret_is_stored(state: Services, sessions: WebSessions) -> None:
    secret = sessions.create("alice", "Firefox", "10.0.0.5")
    assert secret.startswith(PREFIX) and len(secret) > len(PREFIX) + 40
    row = state.web_sessions.session.execute(select(WebSession)).scalar_one()
    assert row.secret_hash == secret_hash(secret) and secret not in row.secret_hash
    assert (row.user_agent, row.remote_addr) == ("Firefox", "10.0.0.5")
    found = sessions.find(secret)
    assert found is not None and found.subject.name == "alice" and found.session_id == row.id
    events = state.audit.session.execute(select(AuditEvent.action)).scalars().all()
    assert "web_session.created" in events
    assert all(secret not in str(e) for e in events)


@pytest.mark.parametrize("secret", ["", "authsvc_ws_", "authsvc_ws_wrong", "authsvc_rt_x"])
def test_an_unknown_secret_opens_nothing(sessions: WebSessions, secret: str) -> None:
    sessions.create("alice")
    assert sessions.find(secret) is None


@pytest.mark.parametrize(("idle_minutes", "alive"), [(29, True), (30, False), (45, False)])
def test_the_idle_timeout(sessions: WebSessions, clock: Clock, idle_minutes: int,
                          alive: bool) -> None:
    secret = sessions.create("alice")
    clock.advance(minutes=idle_minutes)
    assert (sessions.find(secret) is not None) is alive


def test_use_keeps_a_session_alive_until_the_absolute_timeout(
        sessions: WebSessions, clock: Clock) -> None:
    secret = sessions.create("alice")
    for _ in range(11 * 60 // 20):  # every 20 minutes for 11 hours
        clock.advance(minutes=20)
        assert sessions.find(secret) is not None
    clock.now = START + timedelta(hours=12)
    assert sessions.find(secret) is None
    assert sessions.list_for("alice") == []


def test_last_seen_is_written_at_most_once_a_minute(
        state: Services, sessions: WebSessions, clock: Clock) -> None:
    secret = sessions.create("alice")
    session = state.web_sessions.session

    def last_seen() -> datetime:
        value = session.execute(select(WebSession.last_seen_at)).scalar_one()
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value

    clock.advance(seconds=30)
    sessions.find(secret)
    assert last_seen() == START
    clock.advance(seconds=31)
    sessions.find(secret)
    assert last_seen() == START + timedelta(seconds=61)


def test_list_and_revoke_one(sessions: WebSessions) -> None:
    first, second = sessions.create("alice"), sessions.create("alice")
    sessions.create("bob")
    listed = sessions.list_for("alice")
    assert len(listed) == 2
    with pytest.raises(NotFound):
        sessions.revoke(listed[0].id, username="bob")
    sessions.revoke(listed[0].id, username="alice")
    assert sessions.find(second) is None and sessions.find(first) is not None
    with pytest.raises(NotFound):
        sessions.revoke(listed[0].id)


def test_revoke_all_of_a_user_leaves_the_others(sessions: WebSessions) -> None:
    alice = [sessions.create("alice") for _ in range(3)]
    bob = sessions.create("bob")
    assert sessions.revoke_all("alice") == 3
    assert all(sessions.find(s) is None for s in alice)
    assert sessions.find(bob) is not None
    with pytest.raises(NotFound):
        sessions.revoke_all("nobody")


@pytest.mark.parametrize("change", ["password", "disable", "delete"])
def test_a_password_change_disabling_or_deleting_the_user_ends_every_session(
        state: Services, sessions: WebSessions, make_user: Callable[..., str],
        change: str) -> None:
    make_user("root", admin=True)
    alice = [sessions.create("alice") for _ in range(2)]
    bob = sessions.create("bob")
    if change == "password":
        state.accounts.set_password("alice", "another long password")
    elif change == "disable":
        state.accounts.set_disabled("alice")
    else:
        state.accounts.delete_user("alice")
    assert all(sessions.find(s) is None for s in alice)
    assert sessions.find(bob) is not None
    rows = state.web_sessions.session.execute(select(WebSession)).scalars().all()
    assert [r.user.username for r in rows] == ["bob"]


def test_an_admin_flag_change_keeps_the_sessions(state: Services, sessions: WebSessions) -> None:
    secret = sessions.create("alice")
    state.accounts.update_user("alice", admin=True)
    found = sessions.find(secret)
    assert found is not None and found.subject.admin


def test_prune_deletes_timed_out_sessions(sessions: WebSessions, clock: Clock) -> None:
    old = sessions.create("alice")
    clock.advance(minutes=20)
    fresh = sessions.create("bob")
    clock.advance(minutes=15)
    assert sessions.prune() == 1
    assert sessions.find(fresh) is not None and sessions.find(old) is None


def test_the_service_reads_its_timeouts_from_the_settings(state: Services) -> None:
    assert state.web_sessions.idle == timedelta(seconds=1800)
    assert state.web_sessions.lifetime == timedelta(seconds=43200)

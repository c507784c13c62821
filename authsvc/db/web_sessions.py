"""Web sessions: the signed-in browsers of the web pages, kept on the server.

Signing in makes a session with a 256-bit random secret; the browser keeps the secret (in a
signed cookie), the database only its SHA-256. A session ends after WEB_SESSION_IDLE_SECONDS
without a request, WEB_SESSION_MAX_SECONDS after it began, on sign-out, when it is revoked, and
when its user changes password, is disabled or deleted (``Accounts`` deletes the rows).
"""

import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from authsvc.core.opaque_secrets import as_utc, secret_hash, utc_now
from authsvc.core.policy import Subject
from authsvc.db.audit import Audit, Event
from authsvc.db.models import DbSession, User, WebSession
from authsvc.errors import NotFound

PREFIX = "authsvc_ws_"
#: ``last_seen_at`` is written at most this often, not on every page.
LAST_SEEN_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class SignedIn:
    """A valid session and who it belongs to."""

    session_id: int
    subject: Subject


def revoke_all_of(session: DbSession, user_id: int) -> None:
    """Delete (uncommitted) every web session of a user: the caller commits with its change
    (a new password, the user disabled)."""
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))


class WebSessions:
    """Web sessions over one SQLAlchemy session; ``now`` tells the time (tests pass their own)."""

    def __init__(self, session: DbSession, audit: Audit, idle_seconds: int = 1800,
                 max_seconds: int = 43200, now: Callable[[], datetime] = utc_now) -> None:
        self.session = session
        self.audit = audit
        self.idle = timedelta(seconds=idle_seconds)
        self.lifetime = timedelta(seconds=max_seconds)
        self.now = now

    def create(self, username: str, user_agent: str = "", remote_addr: str = "") -> str:
        """A new session for an (already authenticated) user; returns its secret."""
        user = self.session.execute(select(User).where(User.username == username)).scalar_one()
        secret = PREFIX + secrets.token_urlsafe(32)
        now = self.now()
        row = WebSession(user=user, secret_hash=secret_hash(secret), created_at=now,
                         last_seen_at=now, user_agent=user_agent[:300],
                         remote_addr=remote_addr[:64])
        self.session.add(row)
        self.session.flush()
        self.audit.add(Event("web_session.created", target=username, detail=f"id={row.id}"),
                       actor=username)
        self.session.commit()
        return secret

    def find(self, secret: str) -> SignedIn | None:
        """The session ``secret`` opens and its user, or None when it is unknown, idle or older
        than the absolute timeout, or its user is disabled. Notes that it was seen (at most
        once a minute)."""
        if not secret.startswith(PREFIX):
            return None
        digest = secret_hash(secret)
        row = self.session.execute(
            select(WebSession.id, WebSession.secret_hash, WebSession.created_at,
                   WebSession.last_seen_at, User.username, User.admin, User.disabled)
            .join(User).where(WebSession.secret_hash == digest)).first()
        now = self.now()
        if (row is None or not hmac.compare_digest(row.secret_hash, digest) or row.disabled
                or now - as_utc(row.created_at) >= self.lifetime
                or now - as_utc(row.last_seen_at) >= self.idle):
            return None
        if now - as_utc(row.last_seen_at) >= LAST_SEEN_PRECISION:
            self.session.execute(update(WebSession).where(WebSession.id == row.id)
                                 .values(last_seen_at=now))
            self.session.commit()
        return SignedIn(row.id, Subject(row.username, admin=row.admin))

    def list_for(self, username: str) -> Sequence[WebSession]:
        """The sessions of ``username`` that have not timed out, newest first."""
        now = self.now()
        rows = self.session.execute(
            select(WebSession).join(User).where(User.username == username)
            .order_by(WebSession.id.desc())).scalars().all()
        return [row for row in rows if now - as_utc(row.created_at) < self.lifetime
                and now - as_utc(row.last_seen_at) < self.idle]

    def revoke(self, session_id: int, username: str | None = None) -> None:
        """End one session (sign-out); with ``username``, only one of that user's. Raises
        NotFound."""
        row = self.session.get(WebSession, session_id)
        if row is None or (username is not None and row.user.username != username):
            raise NotFound(f"web session {session_id} does not exist")
        self.audit.add(Event("web_session.revoked", target=row.user.username,
                             detail=f"id={session_id}"))
        self.session.delete(row)
        self.session.commit()

    def revoke_all(self, username: str) -> int:
        """End every session of ``username``; returns how many ended. Raises NotFound for an
        unknown user."""
        user = self.session.execute(select(User).where(User.username == username)).scalar()
        if user is None:
            raise NotFound(f"user {username[:300]!r} does not exist")
        ended = len(self.session.execute(
            select(WebSession.id).where(WebSession.user_id == user.id)).all())
        revoke_all_of(self.session, user.id)
        self.audit.add(Event("web_session.revoked", target=username, detail="all"))
        self.session.commit()
        return ended

    def prune(self) -> int:
        """Delete the sessions past the absolute timeout or idle; returns how many."""
        now = self.now()
        stale = (WebSession.created_at <= now - self.lifetime) | (
            WebSession.last_seen_at <= now - self.idle)
        ids = list(self.session.execute(select(WebSession.id).where(stale)).scalars())
        if ids:
            self.session.execute(delete(WebSession).where(WebSession.id.in_(ids)))
            self.session.commit()
        return len(ids)

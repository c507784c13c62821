"""Refresh tokens: opaque secrets that let a client get access tokens without the password.

Docker stores the refresh token from ``docker login`` as its identity token, drops the password
and from then on asks for tokens with ``grant_type=refresh_token``. A refresh grant returns the
same refresh token (Docker ignores a rotated one). A refresh token is bound to its user, service
and client id, expires, and dies when the user is disabled, changes password, or revokes it.
"""

import hmac
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, update

from authsvc.core.opaque_secrets import as_utc, secret_hash, utc_now
from authsvc.core.policy import Subject
from authsvc.db.audit import Audit, Event
from authsvc.db.models import DbSession, RefreshToken, User
from authsvc.db.reads import Reads, Wanted
from authsvc.errors import AuthenticationFailed, NotFound

PREFIX = "authsvc_rt_"
INVALID = "refresh token is invalid, expired or revoked"
LAST_USED_PRECISION = timedelta(minutes=1)

#: The token path's read of a refresh token and its user (see ``reads``).
REDEEM = (select(RefreshToken.id, RefreshToken.secret_hash, RefreshToken.service,
                 RefreshToken.client_id, RefreshToken.expires_at, RefreshToken.last_used_at,
                 User.username, User.admin, User.disabled)
          .join(User).where(RefreshToken.secret_hash == bindparam("digest")))
TOUCH = update(RefreshToken).where(RefreshToken.id == bindparam("token_id")).values(
    last_used_at=bindparam("now"))


class RefreshTokens:
    """Refresh tokens over one SQLAlchemy session; the token path reads through ``reads``, and
    ``now`` tells the time (tests pass their own)."""

    def __init__(self, session: DbSession, audit: Audit,
                 reads: Reads, lifetime_days: int = 90,
                 now: Callable[[], datetime] = utc_now) -> None:
        self.session = session
        self.audit = audit
        self.reads = reads
        self.lifetime = timedelta(days=lifetime_days)
        self.now = now

    def issue(self, username: str, service: str, client_id: str) -> str:
        """Create a refresh token for an (already authenticated) user; return its secret."""
        user = self.session.execute(select(User).where(User.username == username)).scalar_one()
        secret = PREFIX + secrets.token_urlsafe(32)
        now = self.now()
        row = RefreshToken(user=user, secret_hash=secret_hash(secret), service=service,
                           client_id=client_id, created_at=now, expires_at=now + self.lifetime)
        self.session.add(row)
        self.session.flush()
        self.audit.add(Event("refresh_token.issued", target=username, service=service,
                             detail=f"id={row.id}"), actor=username)
        self.session.commit()
        return secret

    def reads_ahead(self, secret: str) -> list[Wanted]:
        """The read ``redeem`` makes, for ``Reads.ahead``."""
        return [(REDEEM, {"digest": secret_hash(secret)})]

    def redeem(self, secret: str, service: str, client_id: str) -> Subject:
        """The subject a refresh token stands for. Raises AuthenticationFailed when unusable."""
        digest = secret_hash(secret)
        row = self.reads.first(REDEEM, {"digest": digest})
        now = self.now()
        if (row is None or not hmac.compare_digest(row.secret_hash, digest)
                or row.service != service or row.client_id != client_id
                or as_utc(row.expires_at) <= now or row.disabled):
            raise AuthenticationFailed(INVALID)
        last_used = as_utc(row.last_used_at)
        if last_used is None or now - last_used >= LAST_USED_PRECISION:
            # written at most once a minute, not on every pull
            self.reads.write(TOUCH, {"token_id": row.id, "now": now})
        return Subject(row.username, admin=row.admin)

    def list_for(self, username: str) -> Sequence[RefreshToken]:
        return self.session.execute(
            select(RefreshToken).join(User).where(User.username == username)
            .order_by(RefreshToken.id)).scalars().all()

    def revoke(self, token_id: int, username: str | None = None) -> None:
        """Revoke one token; with ``username``, only if it belongs to that user."""
        row = self.session.get(RefreshToken, token_id)
        if row is None or (username is not None and row.user.username != username):
            raise NotFound(f"refresh token {token_id} does not exist")
        self.audit.add(Event("refresh_token.revoked", target=row.user.username,
                             service=row.service, detail=f"id={token_id}"))
        self.session.delete(row)
        self.session.commit()

    def revoke_all(self, user_id: int) -> None:
        """Revoke every refresh token of a user (password changed, user disabled). No commit."""
        self.session.execute(delete(RefreshToken).where(RefreshToken.user_id == user_id))

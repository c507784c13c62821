"""Personal access tokens for people and CI: what Docker Hub calls access tokens.

A token is shown once, stored as a SHA-256 (a fast hash is enough for 256 random bits), starts
with ``authsvc_pat_`` so secret scanners recognise a leaked one, and is accepted as the password
on ``/token`` and the API. It never grants more than its owner holds at the moment of use.
"""

import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update

from authsvc.core.opaque_secrets import as_utc, secret_hash, utc_now
from authsvc.core.policy import DELETE, PULL, PUSH, Subject, TokenLimit
from authsvc.db.audit import Audit, Event
from authsvc.db.grants import validate_target
from authsvc.db.models import AccessToken, DbSession, User
from authsvc.db.reads import Reads, Wanted
from authsvc.errors import AuthenticationFailed, InvalidRequest, NotFound

PREFIX = "authsvc_pat_"
PERMISSIONS = {
    "read": frozenset({PULL}),
    "write": frozenset({PULL, PUSH}),
    "delete": frozenset({PULL, PUSH, DELETE}),
}
MAX_NAME = 100
MAX_REPOSITORIES = 50
MAX_DAYS = 3650

#: The token path's read of an access token and its owner (see ``reads``).
AUTHENTICATE = (select(AccessToken.id, AccessToken.secret_hash, AccessToken.permission,
                       AccessToken.repositories, AccessToken.expires_at,
                       AccessToken.last_used_at, User.username, User.admin, User.disabled)
                .join(User).where(AccessToken.secret_hash == bindparam("digest")))
TOUCH = update(AccessToken).where(AccessToken.id == bindparam("token_id")).values(
    last_used_at=bindparam("now"))


@dataclass(frozen=True)
class TokenInfo:
    """An access token as it may be shown: everything but the secret."""

    id: int
    username: str
    name: str
    permission: str
    repositories: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, row: AccessToken) -> "TokenInfo":
        return cls(row.id, row.user.username, row.name, row.permission,
                   tuple(row.repositories.split()), as_utc(row.created_at),
                   as_utc(row.expires_at), as_utc(row.last_used_at))


class AccessTokens:
    """Access tokens over one SQLAlchemy session; the token path reads through ``reads``, and
    ``now`` tells the time (tests pass their own)."""

    def __init__(self, session: DbSession, audit: Audit,
                 reads: Reads, now: Callable[[], datetime] = utc_now) -> None:
        self.session = session
        self.audit = audit
        self.reads = reads
        self.now = now

    def create(self, username: str, name: str, permission: str, *,
               expires_in_days: int | None = None,
               repositories: Sequence[str] = ()) -> tuple[TokenInfo, str]:
        """Create a token for ``username``; return its description and the secret (shown once).

        Raises InvalidRequest for a bad name, permission, expiry or repository list and
        NotFound for an unknown user.
        """
        if not name or len(name) > MAX_NAME or not name.isprintable():
            raise InvalidRequest(f"token name must be 1 to {MAX_NAME} printable characters")
        if permission not in PERMISSIONS:
            raise InvalidRequest("permission must be read, write or delete")
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_DAYS:
            raise InvalidRequest(f"expires_in_days must be from 1 to {MAX_DAYS}")
        if len(repositories) > MAX_REPOSITORIES:
            raise InvalidRequest(f"at most {MAX_REPOSITORIES} repositories per token")
        targets = sorted({validate_target(r) for r in repositories})
        user = self.session.execute(select(User).where(User.username == username)).scalar()
        if user is None:
            raise NotFound(f"user {username[:300]!r} does not exist")
        secret = PREFIX + secrets.token_urlsafe(32)
        now = self.now()
        row = AccessToken(
            user=user, name=name, secret_hash=secret_hash(secret), permission=permission,
            repositories=" ".join(targets), created_at=now,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None)
        self.session.add(row)
        self.session.flush()
        self.audit.add(Event("access_token.created", target=username,
                             detail=f"id={row.id} name={name!r} permission={permission} "
                                    f"repositories={' '.join(targets) or '*'}"))
        self.session.commit()
        return TokenInfo.of(row), secret

    def reads_ahead(self, secret: str) -> list[Wanted]:
        """The read ``authenticate`` makes, for ``Reads.ahead``."""
        return [(AUTHENTICATE, {"digest": secret_hash(secret)})]

    def authenticate(self, secret: str, username: str | None = None) -> Subject:
        """The subject an access token stands for, limited by the token.

        With ``username`` (Basic auth) the token must belong to that user. Raises
        AuthenticationFailed, with the same message as a wrong password, when the token is
        unknown, revoked, expired, someone else's, or its owner is disabled.
        """
        digest = secret_hash(secret)
        row = self.reads.first(AUTHENTICATE, {"digest": digest})
        now = self.now()
        expires_at = as_utc(row.expires_at) if row is not None else None
        if (row is None or not hmac.compare_digest(row.secret_hash, digest)
                or (expires_at is not None and expires_at <= now)
                or row.disabled
                or (username is not None and row.username != username)):
            raise AuthenticationFailed()
        limit = TokenLimit(PERMISSIONS[row.permission], tuple(row.repositories.split()))
        last_used = as_utc(row.last_used_at)
        if last_used is None or now - last_used >= timedelta(minutes=1):
            # written at most once a minute, not on every request
            self.reads.write(TOUCH, {"token_id": row.id, "now": now})
        return Subject(row.username, admin=row.admin, limit=limit)

    def list_for(self, username: str) -> list[TokenInfo]:
        rows = self.session.execute(
            select(AccessToken).join(User).where(User.username == username)
            .order_by(AccessToken.id)).scalars().all()
        return [TokenInfo.of(row) for row in rows]

    def revoke(self, token_id: int, username: str | None = None) -> None:
        """Revoke one token; with ``username``, only if it belongs to that user."""
        row = self.session.get(AccessToken, token_id)
        if row is None or (username is not None and row.user.username != username):
            raise NotFound(f"access token {token_id} does not exist")
        self.audit.add(Event("access_token.revoked", target=row.user.username,
                             detail=f"id={token_id} name={row.name!r}"))
        self.session.delete(row)
        self.session.commit()

"""Users: creation, passwords, flags, authentication. The database side of accounts.

Both the web layer and the CLI call these methods, so there is one implementation of each rule
about names and passwords. Methods raise AuthsvcError subclasses; a refused change leaves the
database untouched.
"""

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from authsvc.core.credential_cache import CredentialCache, Found
from authsvc.core.passwords import PasswordHasher
from authsvc.core.policy import Subject
from authsvc.core.scopes import is_valid_component
from authsvc.db.audit import Audit, Event
from authsvc.db.models import (
    DbSession,
    Grant,
    Organization,
    OrgOwner,
    RefreshToken,
    Repository,
    TeamMember,
    User,
)
from authsvc.db.reads import Reads, Wanted
from authsvc.db.web_sessions import revoke_all_of as end_web_sessions
from authsvc.errors import AuthenticationFailed, Conflict, InvalidName, InvalidRequest, NotFound


def validate_username(name: str) -> str:
    """User names follow the path-component grammar, so each user's namespace is valid."""
    if not is_valid_component(name):
        raise InvalidName(
            f"invalid user name {name[:300]!r}: use lower-case letters and digits, "
            "with . _ __ or - between them"
        )
    return name


def commit_or_conflict(session: DbSession, message: str) -> None:
    """Commit; a unique-constraint violation becomes Conflict and nothing is changed."""
    try:
        session.commit()
    except IntegrityError as e:
        session.rollback()
        raise Conflict(message) from e


def lock_name(session: DbSession, name: str) -> None:
    """Hold, until the transaction ends, the right to give ``name`` to a user or an
    organisation, so that two transactions cannot give it to one each: the caller adds its
    row, flushes, then looks for the other kind. On PostgreSQL a transaction-scoped advisory
    lock on the name; SQLite lets one transaction write at a time, from its first write (the
    row added), so looking after the flush sees the other's committed row."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


#: The token path's read of a login (see ``reads``).
LOGIN = select(User.username, User.password_hash, User.admin, User.disabled).where(
    User.username == bindparam("username"))
REHASH = update(User).where(User.username == bindparam("login")).values(
    password_hash=bindparam("new_hash"))


class Accounts:
    """Users over one SQLAlchemy session."""

    def __init__(self, session: DbSession, hasher: PasswordHasher,
                 audit: Audit, reads: Reads, cache: CredentialCache | None = None) -> None:
        self.session = session
        self.hasher = hasher
        self.audit = audit
        self.reads = reads
        self.cache = cache or CredentialCache(0)

    def get_user(self, username: str) -> User:
        """The user called ``username``; raises NotFound."""
        user: User | None = self.session.execute(
            select(User).where(User.username == username)).scalar()
        if user is None:
            raise NotFound(f"user {username[:300]!r} does not exist")
        return user

    def create_user(self, username: str, password: str | None, *, admin: bool = False,
                    robot: bool = False) -> User:
        """Add a user. A robot has no password (it logs in with access tokens); everyone else
        must have one."""
        validate_username(username)
        if robot and password is not None:
            raise InvalidRequest("a robot account has no password; give it access tokens")
        if not robot and password is None:
            raise InvalidRequest("a password is required (or create a robot account)")
        password_hash = self.hasher.hash(password) if password is not None else None
        lock_name(self.session, username)
        user = User(username=username, password_hash=password_hash, admin=admin, robot=robot)
        self.session.add(user)
        try:
            self.session.flush()
        except IntegrityError:
            self.session.rollback()
            raise Conflict(f"user {username!r} already exists") from None
        if self.session.execute(select(Organization.id).where(
                Organization.name == username)).first() is not None:
            self.session.rollback()
            raise Conflict(f"the name {username!r} is taken by an organisation")
        kind = "robot" if robot else "admin" if admin else "user"
        self.audit.add(Event("user.created", target=username, detail=kind))
        commit_or_conflict(self.session, f"user {username!r} already exists")
        return user

    def update_user(self, username: str, *, password: str | None = None,
                    admin: bool | None = None, disabled: bool | None = None) -> User:
        """Change any of password, admin flag and disabled flag, all or nothing.

        A new password or disabling the user revokes every refresh token and ends every web
        session of the user, in the same transaction. The last
        enabled admin cannot be demoted or disabled (Conflict).
        """
        user = self.get_user(username)
        if password is not None and user.robot:
            raise InvalidRequest("a robot account has no password; give it access tokens")
        new_hash = self.hasher.hash(password) if password is not None else None
        still_admin = user.admin if admin is None else admin
        still_enabled = not user.disabled if disabled is None else not disabled
        if user.admin and not user.disabled and not (still_admin and still_enabled):
            self._keep_an_admin(user)
        if new_hash is not None:
            user.password_hash = new_hash
        if admin is not None:
            user.admin = admin
        if disabled is not None:
            user.disabled = disabled
        if new_hash is not None or disabled:
            self._drop_refresh_tokens(user)
            end_web_sessions(self.session, user.id)
        changes = [name for name, given in (("password", password is not None),) if given]
        changes += [f"{name}={str(value).lower()}" for name, value in
                    (("admin", admin), ("disabled", disabled)) if value is not None]
        self.audit.add(Event("user.updated", target=username, detail=" ".join(changes)))
        self.session.commit()
        return user

    def set_password(self, username: str, password: str) -> None:
        self.update_user(username, password=password)

    def set_disabled(self, username: str, disabled: bool = True) -> None:
        self.update_user(username, disabled=disabled)

    def delete_user(self, username: str) -> None:
        """Delete a user with their tokens, the grants held by their name, and their namespace:
        every grant on a target in it (``alice/*``, ``alice/…``) and its repository records, so
        that a new account of that name inherits nothing. One transaction.

        Raises NotFound for an unknown user, Conflict for the last enabled admin.
        """
        user = self.get_user(username)
        if user.admin and not user.disabled:
            self._keep_an_admin(user)
        self._forget_name(username)
        self.session.delete(user)
        self.audit.add(Event("user.deleted", target=username))
        self.session.commit()

    def _forget_name(self, username: str) -> None:
        """Delete (uncommitted) the grants, organisation ownerships and team memberships held
        by ``username`` and everything in the namespace of that name."""
        inside = f"{username}/"
        self.session.execute(delete(Grant).where(
            or_(Grant.username == username, Grant.target.startswith(inside, autoescape=True))))
        self.session.execute(delete(Repository).where(
            Repository.name.startswith(inside, autoescape=True)))
        self.session.execute(delete(OrgOwner).where(OrgOwner.username == username))
        self.session.execute(delete(TeamMember).where(TeamMember.username == username))

    def _keep_an_admin(self, user: User) -> None:
        others = self.session.execute(
            select(func.count(User.id)).where(User.admin, ~User.disabled, User.id != user.id)
        ).scalar_one()
        if not others:
            raise Conflict(f"{user.username!r} is the last enabled admin; make another first")

    def _drop_refresh_tokens(self, user: User) -> None:
        self.session.execute(delete(RefreshToken).where(RefreshToken.user_id == user.id))

    def list_users(self, offset: int = 0, limit: int | None = None) -> Sequence[User]:
        query = select(User).order_by(User.username).offset(offset).limit(limit)
        return self.session.execute(query).scalars().all()

    def count_users(self) -> int:
        return int(self.session.execute(select(func.count(User.id))).scalar_one())

    def count_admins(self) -> int:
        return int(self.session.execute(select(func.count(User.id)).where(User.admin))
                   .scalar_one())

    def reads_ahead(self, username: str) -> list[Wanted]:
        """The read ``authenticate`` makes, for ``Reads.ahead``."""
        return [(LOGIN, {"username": username})]

    def authenticate(self, username: str, password: str,
                     before_hashing: Callable[[], None] | None = None) -> Subject:
        """Return the Subject for valid credentials of an enabled user.

        Raises AuthenticationFailed with the same message, after the same hashing work, whether
        the user is unknown, disabled or the password is wrong. A password verified less than
        CREDENTIAL_CACHE_SECONDS ago against the same stored hash skips the hashing; otherwise
        ``before_hashing`` is called first (the login throttle counts the attempt there, and
        may raise TooManyAttempts).
        """
        user: Any = self.reads.first(LOGIN, {"username": username})
        found = self._cached(user, username, password)
        if found is Found.VERIFIED:
            return Subject(user.username, admin=user.admin)
        if found is Found.RENEW:  # the others are served from the cache meanwhile
            return self._check(username, password, user, before_hashing)
        with self.cache.one_check_at_a_time(username, password):
            if self._cached(user, username, password) is Found.VERIFIED:  # who we waited for
                return Subject(user.username, admin=user.admin)
            return self._check(username, password, user, before_hashing)

    def _cached(self, user: Any, username: str, password: str) -> Found:
        """What the credential cache holds for an enabled ``user`` (NOTHING for none)."""
        if user is None or user.password_hash is None or user.disabled:
            return Found.NOTHING
        return self.cache.lookup(username, password, user.password_hash)

    def _check(self, username: str, password: str, user: Any,
               before_hashing: Callable[[], None] | None) -> Subject:
        """``authenticate`` with bcrypt; the pair is remembered when it verifies."""
        stored = user.password_hash if user else None
        if before_hashing is not None:
            before_hashing()
        ok, new_hash = self.hasher.verify(password, stored)
        if user is None or stored is None or not ok or user.disabled:
            raise AuthenticationFailed()
        if new_hash is not None:
            self.reads.write(REHASH, {"login": username, "new_hash": new_hash})
            stored = new_hash
        self.cache.remember(username, password, stored)
        return Subject(user.username, admin=user.admin)

"""Database tables. Columns and constraints only; the rules live in ``policy`` and ``accounts``."""

from datetime import UTC, datetime

from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    mapped_column,
    relationship,
    scoped_session,
)


class Base(DeclarativeBase):
    pass


#: Every timestamp is stored with its zone (UTC); SQLite hands them back naive, in UTC.
TIMESTAMP = DateTime(timezone=True)


db = SQLAlchemy(model_class=Base)
#: The session every service is given: flask_sqlalchemy's ``db.session``.
DbSession = scoped_session[FlaskSession]


def _now() -> datetime:
    return datetime.now(UTC)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    #: None for an account that cannot log in with a password.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    admin: Mapped[bool] = mapped_column(default=False)
    disabled: Mapped[bool] = mapped_column(default=False)
    #: A robot account has no password and logs in only with access tokens.
    robot: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, default=_now)


class Repository(Base):
    __tablename__ = "repositories"
    __table_args__ = (
        CheckConstraint("visibility IN ('public', 'private')", name="ck_repositories_visibility"),
        # Search (name LIKE '%q%'): trigrams on PostgreSQL (migration 0004 says why and what it
        # does where pg_trgm cannot be added); on SQLite an empty index, for the same schema.
        Index("ix_repositories_name_trgm", "name", postgresql_using="gin",
              postgresql_ops={"name": "gin_trgm_ops"}, postgresql_with={"fastupdate": "off"},
              sqlite_where=text("0")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    visibility: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, default=_now)
    #: Set by owners; shown by listings and ``docker search``.
    description: Mapped[str] = mapped_column(String(1000), default="")
    #: The last push of a tag the registry told authsvc about (None: none known).
    pushed_at: Mapped[datetime | None] = mapped_column(TIMESTAMP, index=True)
    #: Manifests fetched by tag (one per ``docker pull``), and when the last was.
    pull_count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_pulled_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)


class Tag(Base):
    """A tag the registry holds, as its notifications and ``registry sync`` report it."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("repository_id", "name", name="uq_tags_repository_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(255), default="")
    #: Compressed bytes of the image (config and layers; an index: its platform images).
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    #: None when only ``registry sync`` saw it (the registry does not say when).
    pushed_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    pushed_by: Mapped[str] = mapped_column(String(255), default="")


class Manifest(Base):
    """The size of each manifest pushed, tagged or not, so that an index (pushed after its
    platform manifests, by digest) can be given the size of its images."""

    __tablename__ = "manifests"
    __table_args__ = (
        UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(255), default="")
    size: Mapped[int] = mapped_column(BigInteger, default=0)


class RegistryEventSeen(Base):
    """The id of each registry notification recorded: the registry retries a delivery it
    thinks failed, so one event can arrive twice and must count once."""

    __tablename__ = "registry_events"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(TIMESTAMP, default=_now, index=True)


class Grant(Base):
    """Actions given to a user name on a repository (``alice/httpd``) or namespace
    (``alice/*``). The name need not have an account (yet): a grant never tells whether one
    exists. Deleting a user deletes the grants held by that name."""

    __tablename__ = "grants"
    __table_args__ = (
        UniqueConstraint("username", "target", name="uq_grants_username_target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Served by the unique constraint's index (username first), which the token path reads.
    username: Mapped[str] = mapped_column(String(255))
    target: Mapped[str] = mapped_column(String(257), index=True)
    #: Comma-separated, sorted: ``delete,pull,push``.
    actions: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, default=_now)


class RefreshToken(Base):
    """A long-lived secret that stands in for a password (Docker's identity token).

    Only a SHA-256 of the secret is stored; the secret is shown once, when issued.
    """

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    service: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, default=_now)
    expires_at: Mapped[datetime] = mapped_column(TIMESTAMP)
    last_used_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)

    user: Mapped[User] = relationship()


class AccessToken(Base):
    """A personal access token: a revocable secret accepted as the password, limited to
    ``permission`` and optionally to listed repositories or namespaces."""

    __tablename__ = "access_tokens"
    __table_args__ = (
        CheckConstraint("permission IN ('read', 'write', 'delete')",
                        name="ck_access_tokens_permission"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    permission: Mapped[str] = mapped_column(String(16))
    #: Space-separated repository paths or ``ns/*``; empty means every repository.
    repositories: Mapped[str] = mapped_column(String(4096), default="")
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, default=_now)
    expires_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    last_used_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)

    user: Mapped[User] = relationship()


class WebSession(Base):
    """A signed-in browser of the web pages. Only a SHA-256 of the session's secret is stored;
    the secret lives in the browser's cookie. Ends after an idle and an absolute timeout, on
    sign-out, and when the user changes password or is disabled."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, default=_now)
    last_seen_at: Mapped[datetime] = mapped_column(TIMESTAMP, default=_now)
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    remote_addr: Mapped[str] = mapped_column(String(64), default="")

    user: Mapped[User] = relationship()


class Organization(Base):
    """A namespace (``acme/…``) that a group owns instead of one user. Its name is taken from
    the user names' space: no user and no organisation share one."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, default=_now)


class OrgOwner(Base):
    """A user name that owns an organisation. Names, as grants: deleting the user deletes
    the row."""

    __tablename__ = "org_owners"
    __table_args__ = (UniqueConstraint("org_id", "username", name="uq_org_owners"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(255), index=True)


class Team(Base):
    """A group of an organisation's members, given permissions on its repositories."""

    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_teams_org_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, default=_now)


class TeamMember(Base):
    """A user name in a team (a person or a robot account). Deleting the user deletes it."""

    __tablename__ = "team_members"
    __table_args__ = (UniqueConstraint("team_id", "username", name="uq_team_members"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    #: The token path reads a user's teams by this name.
    username: Mapped[str] = mapped_column(String(255), index=True)


class TeamPermission(Base):
    """A team's ``read``, ``write`` or ``admin`` on one repository of its organisation
    (``acme/app``) or on all of them (``acme/*``)."""

    __tablename__ = "team_permissions"
    __table_args__ = (
        UniqueConstraint("team_id", "target", name="uq_team_permissions"),
        CheckConstraint("permission IN ('read', 'write', 'admin')",
                        name="ck_team_permissions_permission"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(257), index=True)
    permission: Mapped[str] = mapped_column(String(16))


class AuditEvent(Base):
    """One line of the audit trail. Never holds a secret: names, ids and scopes only."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(TIMESTAMP, default=_now, index=True)
    #: ``token.issued``, ``token.refused``, ``user.created``, ``grant.set``, …
    action: Mapped[str] = mapped_column(String(64), index=True)
    #: Who acted: a user name, ``cli:<os user>``, or empty for anonymous.
    actor: Mapped[str] = mapped_column(String(300), default="", index=True)
    target: Mapped[str] = mapped_column(String(600), default="")
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    client_id: Mapped[str] = mapped_column(String(128), default="")
    service: Mapped[str] = mapped_column(String(255), default="")
    requested: Mapped[str] = mapped_column(String(4000), default="")
    granted: Mapped[str] = mapped_column(String(4000), default="")
    detail: Mapped[str] = mapped_column(String(1000), default="")


class LoginFailure(Base):
    """One failed login, kept for the length of the lockout window (database lockout store)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``account:<name>`` or ``address:<ip>``.
    key: Mapped[str] = mapped_column(String(320), index=True)
    at: Mapped[float] = mapped_column(index=True)


def engine_of(session: DbSession) -> Engine:
    """The engine ``session`` is bound to (authsvc binds it to one engine, never a
    connection). Needs the app context."""
    bind = session.get_bind()
    if not isinstance(bind, Engine):
        raise TypeError(f"the session is bound to {type(bind).__name__}, not an Engine")
    return bind

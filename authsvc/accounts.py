"""The store of users, repositories and grants: the one module that talks to the database.

Both the web layer and the CLI call these methods, so there is one implementation of each rule
about names, passwords and grants. Methods take and return plain values or models and raise
AuthsvcError subclasses; a refused change leaves the database untouched.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import scoped_session

from authsvc.errors import AuthenticationFailed, Conflict, InvalidName, InvalidRequest, NotFound
from authsvc.models import Grant, RefreshToken, Repository, User
from authsvc.passwords import PasswordHasher
from authsvc.policy import (
    ALL,
    PUSH,
    RepoFacts,
    Subject,
    granted_actions,
    namespace_of,
    parse_actions,
)
from authsvc.policy import Grant as PolicyGrant
from authsvc.scopes import Scope, is_valid_component, is_valid_path

VISIBILITIES = ("public", "private")


def validate_username(name: str) -> str:
    """User names follow the path-component grammar, so each user's namespace is valid."""
    if not is_valid_component(name):
        raise InvalidName(
            f"invalid user name {name[:300]!r}: use lower-case letters and digits, "
            "with . _ __ or - between them"
        )
    return name


def validate_repository_path(name: str) -> str:
    if not is_valid_path(name):
        raise InvalidName(
            f"invalid repository name {name[:300]!r}: use lower-case components "
            "(letters, digits, . _ __ -) joined by /, at most 255 characters"
        )
    return name


def validate_target(target: str) -> str:
    """A grant target is a repository path or a namespace written ``ns/*``."""
    if target.endswith("/*"):
        namespace = target[:-2]
        if not is_valid_component(namespace):
            raise InvalidName(f"invalid namespace {namespace[:300]!r} in grant target")
        return target
    return validate_repository_path(target)


def validate_visibility(visibility: str) -> str:
    if visibility not in VISIBILITIES:
        raise InvalidRequest(f"visibility must be 'public' or 'private', not {visibility[:50]!r}")
    return visibility


@dataclass(frozen=True)
class GrantRow:
    username: str
    target: str
    actions: tuple[str, ...]


class Accounts:
    """Users, repositories and grants over one SQLAlchemy session."""

    def __init__(self, session: scoped_session, hasher: PasswordHasher,  # type: ignore[type-arg]
                 default_visibility: str = "private") -> None:
        self.session = session
        self.hasher = hasher
        self.default_visibility = validate_visibility(default_visibility)

    # -- users -------------------------------------------------------------------------------

    def _user(self, username: str) -> User:
        user = self.session.execute(select(User).where(User.username == username)).scalar()
        if user is None:
            raise NotFound(f"user {username[:300]!r} does not exist")
        return user

    def get_user(self, username: str) -> User:
        return self._user(username)

    def create_user(self, username: str, password: str | None, *, admin: bool = False) -> User:
        validate_username(username)
        password_hash = self.hasher.hash(password) if password is not None else None
        user = User(username=username, password_hash=password_hash, admin=admin)
        self.session.add(user)
        self._commit(f"user {username!r} already exists")
        return user

    def set_password(self, username: str, password: str) -> None:
        """Change the password; every refresh token of the user stops working."""
        user = self._user(username)
        user.password_hash = self.hasher.hash(password)
        self._drop_refresh_tokens(user)
        self.session.commit()

    def set_disabled(self, username: str, disabled: bool = True) -> None:
        """Disable (or enable) a user; disabling also revokes their refresh tokens."""
        user = self._user(username)
        user.disabled = disabled
        if disabled:
            self._drop_refresh_tokens(user)
        self.session.commit()

    def _drop_refresh_tokens(self, user: User) -> None:
        self.session.execute(delete(RefreshToken).where(RefreshToken.user_id == user.id))

    def set_admin(self, username: str, admin: bool) -> None:
        self._user(username).admin = admin
        self.session.commit()

    def list_users(self) -> Sequence[User]:
        return self.session.execute(select(User).order_by(User.username)).scalars().all()

    def count_admins(self) -> int:
        return len(self.session.execute(select(User.id).where(User.admin)).all())

    def authenticate(self, username: str, password: str) -> Subject:
        """Return the Subject for valid credentials of an enabled user.

        Raises AuthenticationFailed with the same message, after the same hashing work, whether
        the user is unknown, disabled or the password is wrong.
        """
        user = self.session.execute(select(User).where(User.username == username)).scalar()
        ok, new_hash = self.hasher.verify(password, user.password_hash if user else None)
        if user is None or not ok or user.disabled:
            raise AuthenticationFailed()
        if new_hash is not None:
            user.password_hash = new_hash
            self.session.commit()
        return Subject(user.username, admin=user.admin, disabled=user.disabled)

    # -- repositories ------------------------------------------------------------------------

    def _repository(self, name: str) -> Repository | None:
        return self.session.execute(select(Repository).where(Repository.name == name)).scalar()

    def create_repository(self, name: str, visibility: str | None = None) -> Repository:
        validate_repository_path(name)
        repo = Repository(name=name, visibility=validate_visibility(
            visibility or self.default_visibility))
        self.session.add(repo)
        self._commit(f"repository {name!r} already exists")
        return repo

    def ensure_repository(self, name: str) -> None:
        """Register ``name`` with the default visibility if it is not known yet."""
        if self._repository(name) is None:
            try:
                self.create_repository(name)
            except Conflict:
                pass  # registered by a concurrent request

    def set_visibility(self, name: str, visibility: str) -> Repository:
        validate_visibility(visibility)
        repo = self._repository(name)
        if repo is None:
            raise NotFound(f"repository {name[:300]!r} does not exist; add it first")
        repo.visibility = visibility
        self.session.commit()
        return repo

    def list_repositories(self) -> Sequence[Repository]:
        return self.session.execute(select(Repository).order_by(Repository.name)).scalars().all()

    def repo_facts(self, subject: Subject, path: str) -> RepoFacts:
        """Visibility of ``path`` and the subject's grants that may cover it."""
        repo = self._repository(path)
        public = repo is not None and repo.visibility == "public"
        grants: tuple[PolicyGrant, ...] = ()
        if subject.name is not None:
            targets = [path]
            namespace = namespace_of(path)
            if namespace is not None:
                targets.append(f"{namespace}/*")
            rows = self.session.execute(
                select(Grant.target, Grant.actions).join(User)
                .where(User.username == subject.name, Grant.target.in_(targets))
            ).all()
            grants = tuple(PolicyGrant(t, frozenset(a.split(","))) for t, a in rows)
        return RepoFacts(path, public=public, grants=grants)

    def authorize(self, subject: Subject, scopes: Sequence[Scope],
                  ) -> list[tuple[Scope, frozenset[str]]]:
        """Decide each requested scope: requested ∩ allowed, per policy.

        A repository its owner (or an admin) may push to is registered on the way, so that its
        visibility can be managed once it exists.
        """
        decided = []
        for scope in scopes:
            facts = self.repo_facts(subject, scope.path) if scope.type == "repository" else None
            granted = granted_actions(subject, scope, facts)
            if facts is not None and granted & {PUSH, ALL}:
                self.ensure_repository(scope.path)
            decided.append((scope, granted))
        return decided

    # -- grants ------------------------------------------------------------------------------

    def grant(self, username: str, target: str, actions: str | Sequence[str]) -> GrantRow:
        """Give ``username`` exactly ``actions`` on ``target``, replacing an earlier grant."""
        validate_target(target)
        wanted = ",".join(sorted(parse_actions(actions)))
        user = self._user(username)
        row = self.session.execute(
            select(Grant).where(Grant.user_id == user.id, Grant.target == target)).scalar()
        if row is None:
            self.session.add(Grant(user=user, target=target, actions=wanted))
        else:
            row.actions = wanted
        self._commit(f"grant for {username!r} on {target!r} changed concurrently; try again")
        return GrantRow(username, target, tuple(wanted.split(",")))

    def revoke(self, username: str, target: str) -> None:
        user = self._user(username)
        row = self.session.execute(
            select(Grant).where(Grant.user_id == user.id, Grant.target == target)).scalar()
        if row is None:
            raise NotFound(f"user {username!r} has no grant on {target[:300]!r}")
        self.session.delete(row)
        self.session.commit()

    def list_grants(self, target: str | None = None) -> list[GrantRow]:
        query = select(User.username, Grant.target, Grant.actions).join(User)
        if target is not None:
            query = query.where(Grant.target == target)
        rows = self.session.execute(query.order_by(Grant.target, User.username)).all()
        return [GrantRow(u, t, tuple(a.split(","))) for u, t, a in rows]

    def _commit(self, conflict_message: str) -> None:
        try:
            self.session.commit()
        except IntegrityError as e:
            self.session.rollback()
            raise Conflict(conflict_message) from e

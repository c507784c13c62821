"""Repositories and grants, and the per-request decision that turns scopes into access.

Methods raise AuthsvcError subclasses; a refused change leaves the database untouched.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, bindparam, delete, false, func, or_, select
from sqlalchemy.orm import scoped_session

from authsvc.core.policy import (
    ALL,
    PULL,
    PUSH,
    RepoFacts,
    Subject,
    granted_actions,
    namespace_of,
    owns,
    parse_actions,
)
from authsvc.core.policy import Grant as PolicyGrant
from authsvc.core.scopes import Scope, is_valid_component, is_valid_path
from authsvc.db.accounts import commit_or_conflict, validate_username
from authsvc.db.audit import Audit, Event
from authsvc.db.models import Grant, Repository
from authsvc.db.reads import Reads
from authsvc.errors import Conflict, InvalidName, InvalidRequest, NotFound

VISIBILITIES = ("public", "private")


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
        raise InvalidRequest(f"visibility must be 'public' or 'private', not {visibility!r:.50}")
    return visibility


@dataclass(frozen=True)
class GrantRow:
    username: str
    target: str
    actions: tuple[str, ...]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _matches_any(targets: Sequence[str]) -> ColumnElement[bool]:
    """SQL condition: the repository name is one of ``targets`` or inside a ``ns/*`` of them."""
    conditions = [Repository.name.like(f"{_like_escape(t[:-1])}%", escape="\\")
                  if t.endswith("/*") else Repository.name == t for t in targets]
    return or_(false(), *conditions)


#: The token path's reads (see ``reads``): a repository's visibility, and a user's grants on a
#: repository and on its namespace (``path`` twice when it has none).
VISIBILITY = select(Repository.visibility).where(Repository.name == bindparam("path"))
GRANTS_ON = select(Grant.target, Grant.actions).where(
    Grant.username == bindparam("username"),
    or_(Grant.target == bindparam("path"), Grant.target == bindparam("space")))


class Repositories:
    """Repositories and grants over one SQLAlchemy session."""

    def __init__(self, session: scoped_session, audit: Audit,  # type: ignore[type-arg]
                 default_visibility: str = "private", reads: Reads | None = None) -> None:
        self.session = session
        self.reads = reads or Reads(session)
        self.audit = audit
        self.default_visibility = validate_visibility(default_visibility)

    # -- repositories ------------------------------------------------------------------------

    def find(self, name: str) -> Repository | None:
        return self.session.execute(select(Repository).where(Repository.name == name)).scalar()

    def get(self, name: str) -> Repository:
        repo = self.find(name)
        if repo is None:
            raise NotFound(f"repository {name[:300]!r} does not exist")
        return repo

    def create(self, name: str, visibility: str | None = None, *,
               action: str = "repository.created") -> Repository:
        validate_repository_path(name)
        repo = Repository(name=name, visibility=validate_visibility(
            visibility or self.default_visibility))
        self.session.add(repo)
        self.audit.add(Event(action, target=name, detail=repo.visibility))
        commit_or_conflict(self.session, f"repository {name!r} already exists")
        return repo

    def ensure(self, name: str) -> None:
        """Register ``name`` with the default visibility if it is not known yet."""
        if self.find(name) is None:
            try:
                self.create(name, action="repository.registered")
            except Conflict:
                pass  # registered by a concurrent request

    def set_visibility(self, name: str, visibility: str) -> Repository:
        validate_visibility(visibility)
        repo = self.find(name)
        if repo is None:
            raise NotFound(f"repository {name[:300]!r} does not exist; add it first")
        repo.visibility = visibility
        self.audit.add(Event("repository.visibility", target=name, detail=visibility))
        self.session.commit()
        return repo

    def delete(self, name: str) -> None:
        """Forget a repository and the grants on it (the registry keeps the images)."""
        repo = self.get(name)
        self.session.execute(delete(Grant).where(Grant.target == name))
        self.session.delete(repo)
        self.audit.add(Event("repository.deleted", target=name))
        self.session.commit()

    def _visible_to(self, subject: Subject) -> ColumnElement[bool]:
        """SQL condition: repositories ``subject`` may pull (owned, public, or granted pull),
        within the repositories an access token is limited to."""
        if subject.disabled:
            return false()
        if subject.admin:
            allowed: ColumnElement[bool] = ~false()
        else:
            targets = [target for target, actions in self._grants_of(subject.name)
                       if PULL in actions.split(",")] if subject.name is not None else []
            if subject.name is not None:
                targets.append(f"{subject.name}/*")
            allowed = or_(Repository.visibility == "public", _matches_any(targets))
        if subject.limit is not None and subject.limit.targets:
            allowed = allowed & _matches_any(subject.limit.targets)
        return allowed

    def search(self, subject: Subject | None = None, query: str = "", offset: int = 0,
             limit: int | None = None) -> tuple[Sequence[Repository], int]:
        """Repositories (those ``subject`` may pull, when given) whose name contains ``query``,
        one page of them and the total count."""
        where = [] if subject is None else [self._visible_to(subject)]
        if query:
            where.append(Repository.name.like(f"%{_like_escape(query)}%", escape="\\"))
        total = self.session.execute(
            select(func.count(Repository.id)).where(*where)).scalar_one()
        rows = self.session.execute(select(Repository).where(*where).order_by(Repository.name)
                                    .offset(offset).limit(limit)).scalars().all()
        return rows, int(total)

    # -- the decision ------------------------------------------------------------------------

    def _grants_of(self, username: str) -> list[tuple[str, str]]:
        query = select(Grant.target, Grant.actions).where(Grant.username == username)
        return [(t, a) for t, a in self.session.execute(query).all()]

    def facts(self, subject: Subject, path: str) -> RepoFacts:
        """Visibility of ``path`` and the subject's grants that may cover it (none are looked up
        for an owner, whom they cannot give more)."""
        found = self.reads.first(VISIBILITY, {"path": path})
        exists = found is not None
        public = found is not None and found.visibility == "public"
        grants: tuple[PolicyGrant, ...] = ()
        if subject.name is not None and not owns(subject, path):
            namespace = namespace_of(path)
            space = path if namespace is None else f"{namespace}/*"
            rows = self.reads.all(GRANTS_ON, {"username": subject.name, "path": path,
                                              "space": space})
            grants = tuple(PolicyGrant(row.target, frozenset(row.actions.split(",")))
                           for row in rows)
        return RepoFacts(path, public=public, grants=grants, exists=exists)

    def authorize(self, subject: Subject, scopes: Sequence[Scope],
                  ) -> list[tuple[Scope, frozenset[str]]]:
        """Decide each requested scope: requested ∩ allowed, per policy, on the name exactly
        as requested (a name that is no repository path is looked up nowhere: it gets nothing).

        A repository its owner (or an admin) may push to is registered on the way, so that its
        visibility can be managed once it exists.
        """
        decided = []
        for scope in scopes:
            facts = self.facts(subject, scope.name) if scope.is_repository_path else None
            granted = granted_actions(subject, scope, facts)
            if facts is not None and not facts.exists and granted & {PUSH, ALL}:
                self.ensure(scope.name)
            decided.append((scope, granted))
        return decided

    # -- grants ------------------------------------------------------------------------------

    def grant(self, username: str, target: str, actions: str | Sequence[str]) -> GrantRow:
        """Give the user name ``username`` exactly ``actions`` on ``target``, replacing an
        earlier grant. The name need not have an account (the answer never tells whether it
        has). Raises InvalidName for a bad name or target, InvalidRequest for bad actions,
        Conflict when a concurrent change won."""
        validate_username(username)
        validate_target(target)
        wanted = ",".join(sorted(parse_actions(actions)))
        row = self._grant_row(username, target)
        if row is None:
            self.session.add(Grant(username=username, target=target, actions=wanted))
        else:
            row.actions = wanted
        self.audit.add(Event("grant.set", target=target, detail=f"user={username} {wanted}"))
        commit_or_conflict(self.session,
                           f"grant for {username!r} on {target!r} changed concurrently; retry")
        return GrantRow(username, target, tuple(wanted.split(",")))

    def revoke(self, username: str, target: str) -> None:
        """Take away ``username``'s grant on ``target``; raises NotFound when there is none."""
        row = self._grant_row(username, target)
        if row is None:
            raise NotFound(f"{username[:300]!r} has no grant on {target[:300]!r}")
        self.session.delete(row)
        self.audit.add(Event("grant.revoked", target=target, detail=f"user={username}"))
        self.session.commit()

    def _grant_row(self, username: str, target: str) -> Grant | None:
        return self.session.execute(
            select(Grant).where(Grant.username == username, Grant.target == target)).scalar()

    def list_grants(self, target: str | None = None) -> list[GrantRow]:
        """Every grant (or those on ``target``), by target and user name."""
        query = select(Grant.username, Grant.target, Grant.actions)
        if target is not None:
            query = query.where(Grant.target == target)
        rows = self.session.execute(query.order_by(Grant.target, Grant.username)).all()
        return [GrantRow(u, t, tuple(a.split(","))) for u, t, a in rows]

"""Repository records (name and visibility) and the search over them.

Grants live in ``grants``, the per-request access decision in ``access``. Methods raise
AuthsvcError subclasses; a refused change leaves the database untouched.
"""

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, exists, false, func, or_, select, text

from authsvc.core.policy import PULL, Subject
from authsvc.core.scopes import is_valid_path
from authsvc.db.accounts import commit_or_conflict
from authsvc.db.audit import Audit, Event
from authsvc.db.models import (
    DbSession,
    Grant,
    Organization,
    OrgOwner,
    Repository,
    Tag,
    TeamMember,
    TeamPermission,
)
from authsvc.errors import Conflict, InvalidName, InvalidRequest, NotFound

VISIBILITIES = ("public", "private")
MAX_DESCRIPTION = 1000


def validate_repository_path(name: str) -> str:
    """``name`` if it is a repository path the registry can hold; raises InvalidName."""
    if not is_valid_path(name):
        raise InvalidName(
            f"invalid repository name {name[:300]!r}: use lower-case components "
            "(letters, digits, . _ __ -) joined by /, at most 255 characters"
        )
    return name


def validate_visibility(visibility: str) -> str:
    """``visibility`` if it is public or private; raises InvalidRequest."""
    if visibility not in VISIBILITIES:
        raise InvalidRequest(f"visibility must be 'public' or 'private', not {visibility!r:.50}")
    return visibility


def validate_description(description: str) -> str:
    """``description`` if it has at most MAX_DESCRIPTION characters and no control characters
    but line breaks and tabs; raises InvalidRequest."""
    if len(description) > MAX_DESCRIPTION or any(
            ord(c) < 32 and c not in "\n\t" or 0x7F <= ord(c) < 0xA0 for c in description):
        raise InvalidRequest(f"description must be at most {MAX_DESCRIPTION} characters "
                             "without control characters")
    return description


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _matches_any(targets: Sequence[str]) -> ColumnElement[bool]:
    """SQL condition: the repository name is one of ``targets`` or inside a ``ns/*`` of them.

    The repositories named one by one are one ``IN`` (a lookup per row, however many grants a
    user holds: as ``OR``ed equalities, 300 grants made a search of 100k repositories take
    300 ms); each namespace is a prefix match, correct in any collation.
    """
    names = sorted({t for t in targets if not t.endswith("/*")})
    conditions = [Repository.name.like(f"{_like_escape(t[:-1])}%", escape="\\")
                  for t in sorted(set(targets)) if t.endswith("/*")]
    if names:
        conditions.append(Repository.name.in_(names))
    return or_(false(), *conditions)


class Repositories:
    """Repository records over one SQLAlchemy session."""

    def __init__(self, session: DbSession, audit: Audit,
                 default_visibility: str = "private") -> None:
        self.session = session
        self.audit = audit
        self.default_visibility = validate_visibility(default_visibility)

    def find(self, name: str) -> Repository | None:
        """The record of ``name``, or None."""
        return self.session.execute(select(Repository).where(Repository.name == name)).scalar()

    def get(self, name: str) -> Repository:
        """The record of ``name``; raises NotFound."""
        repo = self.find(name)
        if repo is None:
            raise NotFound(f"repository {name[:300]!r} does not exist")
        return repo

    def create(self, name: str, visibility: str | None = None, *,
               action: str = "repository.created") -> Repository:
        """Register ``name`` (default visibility unless given) and return it. Raises
        InvalidName, InvalidRequest for a bad visibility, Conflict when it exists."""
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
        """Make ``name`` public or private and return it; raises InvalidRequest, NotFound."""
        validate_visibility(visibility)
        repo = self.find(name)
        if repo is None:
            raise NotFound(f"repository {name[:300]!r} does not exist; add it first")
        repo.visibility = visibility
        self.audit.add(Event("repository.visibility", target=name, detail=visibility))
        self.session.commit()
        return repo

    def delete(self, name: str) -> None:
        """Forget a repository, the grants on it and the teams' permissions on it (the
        registry keeps the images)."""
        repo = self.get(name)
        self.session.execute(delete(Grant).where(Grant.target == name))
        self.session.execute(delete(TeamPermission).where(TeamPermission.target == name))
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
            targets = self._pull_targets(subject.name) if subject.name is not None else []
            if subject.name is not None:
                targets.append(f"{subject.name}/*")
            allowed = or_(Repository.visibility == "public", _matches_any(targets))
        if subject.limit is not None and subject.limit.targets:
            allowed = allowed & _matches_any(subject.limit.targets)
        return allowed

    def _pull_targets(self, username: str) -> list[str]:
        """The targets (repositories and ``ns/*``) ``username`` may pull through a grant, a
        team (every team permission pulls) or owning an organisation."""
        rows = self.session.execute(
            select(Grant.target, Grant.actions).where(Grant.username == username)).all()
        targets = [target for target, actions in rows if PULL in actions.split(",")]
        targets += self.session.execute(
            select(TeamPermission.target)
            .join(TeamMember, TeamMember.team_id == TeamPermission.team_id)
            .where(TeamMember.username == username)).scalars()
        targets += [f"{name}/*" for name in self.session.execute(
            select(Organization.name).join(OrgOwner, OrgOwner.org_id == Organization.id)
            .where(OrgOwner.username == username)).scalars()]
        return targets

    def search(self, subject: Subject | None = None, query: str = "", offset: int = 0,
               limit: int | None = None, *, prefix: bool = False, sort: str = "name",
               visibility: str | None = None) -> tuple[Sequence[Repository], int]:
        """Repositories (those ``subject`` may pull, when given) whose name contains ``query``
        (starts with it, with ``prefix``), one page of them and the total count. ``sort`` is
        ``name``, or ``pushed`` (the last push first, never-pushed ones last, by name).
        ``visibility`` keeps only the public or only the private ones.

        Measured with 100k repositories (``bench/run --search``): the name is matched before
        the rights (half the time on SQLite), the page is read first and the total counted
        only when the page does not tell it (a first page that is not full is all there is),
        and PostgreSQL plans each search for its own pattern and names (a prepared statement's
        generic plan, which PostgreSQL switches to after five runs, knows neither: one search
        took 430 ms instead of 5).
        """
        where: list[ColumnElement[bool]] = []
        if query:
            pattern = f"{_like_escape(query)}%" if prefix else f"%{_like_escape(query)}%"
            where.append(Repository.name.like(pattern, escape="\\"))
        if subject is not None:
            where.append(self._visible_to(subject))
        if visibility is not None:
            where.append(Repository.visibility == validate_visibility(visibility))
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        order = ([Repository.pushed_at.is_(None), Repository.pushed_at.desc(), Repository.name]
                 if sort == "pushed" else [Repository.name])
        rows = self.session.execute(select(Repository).where(*where).order_by(*order)
                                    .offset(offset).limit(limit)).scalars().all()
        if offset == 0 and (limit is None or len(rows) < limit):
            return rows, len(rows)
        total = self.session.execute(
            select(func.count(Repository.id)).where(*where)).scalar_one()
        return rows, int(total)

    def tagged_names(self, subject: Subject, after: str, limit: int) -> list[str]:
        """Up to ``limit`` names after ``after`` of the repositories ``subject`` may pull that
        hold a tag (those the registry holds), in byte order, as the registry's catalog
        sorts (PostgreSQL's collation may be a language's, so its names are compared in C)."""
        name = Repository.name.expression
        if self.session.get_bind().dialect.name == "postgresql":
            name = Repository.name.collate("C")
        query = (select(Repository.name)
                 .where(self._visible_to(subject),
                        exists().where(Tag.repository_id == Repository.id), name > after)
                 .order_by(name).limit(limit))
        return list(self.session.execute(query).scalars())

    def set_description(self, name: str, description: str) -> Repository:
        """Set the description of ``name`` (at most 1000 characters, no control characters
        but line breaks and tabs) and return it; raises InvalidRequest, NotFound."""
        validate_description(description)
        repo = self.get(name)
        repo.description = description
        self.audit.add(Event("repository.description", target=name))
        self.session.commit()
        return repo

"""Authorization: the per-request access decision that turns requested scopes into granted
actions. It sits beside authentication (``credentials``, which turns credentials into a
Subject), as docker_auth's authz beside its authn.

The decision reads a repository's visibility and the subject's grants on it through ``Reads``
(statements compiled once, on the thread's kept connection), and leaves the rules to
``core.policy``.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import CompoundSelect, bindparam, literal_column, or_, select, union_all

from authsvc.core.policy import (
    ALL,
    PUSH,
    RepoFacts,
    Subject,
    TeamGrant,
    granted_actions,
    namespace_of,
    owns,
)
from authsvc.core.policy import Grant as PolicyGrant
from authsvc.core.scopes import Scope
from authsvc.db.models import Grant, Organization, OrgOwner, Repository, TeamMember, TeamPermission
from authsvc.db.reads import Reads, Wanted
from authsvc.db.repositories import Repositories

#: The token path's reads (see ``reads``): a repository's visibility, and in one round trip
#: what a user holds on a repository through its namespace (``space``, ``path`` again when it
#: has none): their grants on either, their teams' permissions on either, and whether they own
#: the organisation of that namespace (``namespace``).
GRANT, TEAM, OWNER = "grant", "team", "owner"
VISIBILITY = select(Repository.visibility).where(Repository.name == bindparam("path"))
GRANTS_ON: CompoundSelect[Any] = union_all(
    select(literal_column(f"'{GRANT}'").label("kind"), Grant.target,
           Grant.actions.label("what")).where(
        Grant.username == bindparam("username"),
        or_(Grant.target == bindparam("path"), Grant.target == bindparam("space"))),
    select(literal_column(f"'{TEAM}'").label("kind"), TeamPermission.target,
           TeamPermission.permission.label("what"))
    .join(TeamMember, TeamMember.team_id == TeamPermission.team_id).where(
        TeamMember.username == bindparam("username"),
        or_(TeamPermission.target == bindparam("path"),
            TeamPermission.target == bindparam("space"))),
    select(literal_column(f"'{OWNER}'").label("kind"), Organization.name.label("target"),
           literal_column("''").label("what"))
    .join(OrgOwner, OrgOwner.org_id == Organization.id).where(
        Organization.name == bindparam("namespace"), OrgOwner.username == bindparam("username")))


def grants_parameters(username: str, path: str) -> dict[str, str | None]:
    """``GRANTS_ON``'s parameters for what ``username`` holds on ``path``."""
    namespace = namespace_of(path)
    space = path if namespace is None else f"{namespace}/*"
    return {"username": username, "path": path, "space": space, "namespace": namespace}


class Authorizer:
    """Decides what a subject may do on the scopes it asks for."""

    def __init__(self, reads: Reads, repos: Repositories) -> None:
        self.reads = reads
        self.repos = repos

    def reads_ahead(self, username: str | None, scopes: Sequence[Scope]) -> list[Wanted]:
        """The reads ``authorize`` makes for these scopes when ``username`` (None: anonymous,
        or not known yet) asks, for ``Reads.ahead``."""
        wanted: list[Wanted] = []
        for scope in scopes:
            if scope.is_repository_path:
                wanted.append((VISIBILITY, {"path": scope.name}))
                if username is not None and not owns(Subject(username), scope.name):
                    wanted.append((GRANTS_ON, grants_parameters(username, scope.name)))
        return wanted

    def facts(self, subject: Subject, path: str) -> RepoFacts:
        """Visibility of ``path`` and the subject's grants that may cover it (none are looked up
        for an owner, whom they cannot give more)."""
        found = self.reads.first(VISIBILITY, {"path": path})
        exists = found is not None
        public = found is not None and found.visibility == "public"
        grants: list[PolicyGrant] = []
        teams: list[TeamGrant] = []
        org_owner = False
        if subject.name is not None and not owns(subject, path):
            rows = self.reads.all(GRANTS_ON, grants_parameters(subject.name, path))
            for row in rows:
                if row.kind == GRANT:
                    grants.append(PolicyGrant(row.target, frozenset(row.what.split(","))))
                elif row.kind == TEAM:
                    teams.append(TeamGrant(row.target, row.what))
                else:
                    org_owner = True
        return RepoFacts(path, public=public, grants=tuple(grants), exists=exists,
                         org_owner=org_owner, team_grants=tuple(teams))

    def authorize(self, subject: Subject, scopes: Sequence[Scope],
                  ) -> list[tuple[Scope, frozenset[str]]]:
        """Decide each requested scope: requested ∩ allowed, per policy, on the name exactly
        as requested (a name that is no repository path is looked up nowhere: it gets nothing).
        Returns each scope with its granted actions, in order; a denial is an empty set.

        A repository its owner (or an admin) may push to is registered on the way
        (``Repositories.ensure``), so that its visibility can be managed once it exists.
        """
        decided = []
        for scope in scopes:
            facts = self.facts(subject, scope.name) if scope.is_repository_path else None
            granted = granted_actions(subject, scope, facts)
            if facts is not None and not facts.exists and granted & {PUSH, ALL}:
                self.repos.ensure(scope.name)
            decided.append((scope, granted))
        return decided

"""Organisations and their teams: namespaces (``acme/…``) a group owns.

An organisation's name comes from the same space as the user names: creating either refuses a
name the other holds. Owners and team members are user names, as grants are: adding a name
never tells whether an account of that name exists, and deleting a user deletes the rows of
that name. A team holds ``read``, ``write`` or ``admin`` on repositories of its organisation
(``acme/app``) or on all of them (``acme/*``); the token path reads them through
``Authorizer`` (``authsvc.db.access``), so every change counts from the next token request,
on every replica. Methods raise AuthsvcError subclasses; a refused change leaves the database
untouched, and every change is audited.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from authsvc.core.policy import TEAM_PERMISSIONS, namespace_of
from authsvc.db.accounts import commit_or_conflict, lock_name, validate_username
from authsvc.db.audit import Audit, Event
from authsvc.db.models import (
    DbSession,
    Grant,
    Organization,
    OrgOwner,
    Repository,
    Team,
    TeamMember,
    TeamPermission,
    User,
)
from authsvc.db.repositories import MAX_DESCRIPTION, validate_description, validate_repository_path
from authsvc.errors import Conflict, InvalidName, InvalidRequest, NotFound

__all__ = ["MAX_DESCRIPTION", "Organizations"]


def validate_permission(permission: str) -> str:
    if permission not in TEAM_PERMISSIONS:
        raise InvalidRequest(f"unknown permission {permission[:50]!r}: use read, write or admin")
    return permission


def validate_team_target(org: str, target: str) -> str:
    """A team's permission is on ``org/*`` or on a repository ``org/…``: returns ``target``,
    or raises InvalidName (not a name) or InvalidRequest (outside the organisation)."""
    if target == f"{org}/*":
        return target
    if not target.endswith("/*"):
        validate_repository_path(target)
    if target.endswith("/*") or namespace_of(target) != org:
        raise InvalidRequest(f"{target[:300]!r} is not in the organisation {org!r}: "
                             f"name {org}/* or a repository {org}/NAME")
    return target


@dataclass(frozen=True)
class TeamView:
    """A team as the API, the CLI and the pages show it."""

    name: str
    description: str
    members: tuple[str, ...]
    #: ``(target, permission)`` pairs, by target.
    permissions: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class OrgView:
    name: str
    owners: tuple[str, ...]
    teams: tuple[TeamView, ...]
    repositories: int


class Organizations:
    """Organisations, teams, owners and members over one SQLAlchemy session."""

    def __init__(self, session: DbSession, audit: Audit) -> None:
        self.session = session
        self.audit = audit

    # -- organisations ----------------------------------------------------------------------
    def create(self, name: str, owners: Sequence[str] = ()) -> OrgView:
        """Add the organisation ``name`` owned by ``owners`` (user names). Raises InvalidName,
        Conflict when a user or an organisation holds the name."""
        self._check_name(name, "organisation")
        for owner in owners:
            validate_username(owner)
        lock_name(self.session, name)
        org = Organization(name=name)
        self.session.add(org)
        try:
            self.session.flush()
        except IntegrityError:
            self.session.rollback()
            raise Conflict(f"the name {name!r} is taken by a user or an organisation") from None
        if self._user_exists(name):
            self.session.rollback()
            raise Conflict(f"the name {name!r} is taken by a user or an organisation")
        for owner in dict.fromkeys(owners):
            self.session.add(OrgOwner(org_id=org.id, username=owner))
        self.audit.add(Event("org.created", target=name, detail=" ".join(
            f"owner={o}" for o in dict.fromkeys(owners))))
        commit_or_conflict(self.session, f"the name {name!r} is taken by a user or an "
                                         "organisation")
        return self.view(name)

    def delete(self, name: str, *, force: bool = False) -> int:
        """Delete the organisation with its teams. While repositories are recorded in its
        namespace this is refused (Conflict, saying how many) unless ``force``, which forgets
        their records and every grant in the namespace too (the images stay in the registry).
        Returns the number of repository records forgotten."""
        org = self._get(name)
        inside = f"{name}/"
        count = self._repository_count(name)
        if count and not force:
            raise Conflict(f"the organisation {name!r} holds {count} repositor"
                           f"{'y' if count == 1 else 'ies'}: delete them first, or force "
                           "(their records and grants are forgotten, the images stay in the "
                           "registry)")
        self.session.execute(delete(Grant).where(Grant.target.startswith(inside,
                                                                          autoescape=True)))
        self.session.execute(delete(Repository).where(Repository.name.startswith(
            inside, autoescape=True)))
        # its owners, teams, members and permissions go with it (ON DELETE CASCADE)
        self.session.delete(org)
        self.audit.add(Event("org.deleted", target=name,
                             detail=f"repositories={count}" + (" forced" if force else "")))
        self.session.commit()
        return count

    def names(self, member: str | None = None) -> list[str]:
        """Every organisation's name, or those ``member`` owns or is in a team of."""
        query = select(Organization.name)
        if member is not None:
            owned = select(OrgOwner.org_id).where(OrgOwner.username == member)
            teamed = select(Team.org_id).join(TeamMember, TeamMember.team_id == Team.id).where(
                TeamMember.username == member)
            query = query.where(or_(Organization.id.in_(owned), Organization.id.in_(teamed)))
        return list(self.session.execute(query.order_by(Organization.name)).scalars())

    def exists(self, name: str) -> bool:
        return self._find(name) is not None

    def view(self, name: str) -> OrgView:
        """The organisation ``name`` with its owners and teams; raises NotFound."""
        org = self._get(name)
        owners = tuple(self.session.execute(
            select(OrgOwner.username).where(OrgOwner.org_id == org.id)
            .order_by(OrgOwner.username)).scalars())
        teams = tuple(self._team_view(team) for team in self.session.execute(
            select(Team).where(Team.org_id == org.id).order_by(Team.name)).scalars())
        return OrgView(org.name, owners, teams, self._repository_count(name))

    def is_owner(self, name: str, username: str | None) -> bool:
        if username is None:
            return False
        return self.session.execute(
            select(OrgOwner.id).join(Organization, Organization.id == OrgOwner.org_id).where(
                Organization.name == name, OrgOwner.username == username)).first() is not None

    def is_member(self, name: str, username: str | None) -> bool:
        """Whether ``username`` is in any team of the organisation ``name``."""
        if username is None:
            return False
        return self.session.execute(
            select(TeamMember.id).join(Team, Team.id == TeamMember.team_id)
            .join(Organization, Organization.id == Team.org_id)
            .where(Organization.name == name, TeamMember.username == username)
        ).first() is not None

    # -- owners -----------------------------------------------------------------------------
    def add_owner(self, name: str, username: str) -> None:
        validate_username(username)
        org = self._get(name)
        if self._owner_row(org, username) is not None:
            return
        self.session.add(OrgOwner(org_id=org.id, username=username))
        self.audit.add(Event("org.owner_added", target=name, detail=f"user={username}"))
        commit_or_conflict(self.session, f"the owners of {name!r} changed concurrently; retry")

    def remove_owner(self, name: str, username: str) -> None:
        """Raises NotFound when ``username`` is no owner, Conflict for the last owner."""
        org = self._get(name)
        row = self._owner_row(org, username)
        if row is None:
            raise NotFound(f"{username[:300]!r} is not an owner of {name!r}")
        others = self.session.execute(select(func.count(OrgOwner.id)).where(
            OrgOwner.org_id == org.id, OrgOwner.id != row.id)).scalar_one()
        if not others:
            raise Conflict(f"{username!r} is the last owner of {name!r}: add another owner "
                           "first, or delete the organisation")
        self.session.delete(row)
        self.audit.add(Event("org.owner_removed", target=name, detail=f"user={username}"))
        self.session.commit()

    # -- teams ------------------------------------------------------------------------------
    def create_team(self, org_name: str, team: str, description: str = "") -> TeamView:
        org = self._get(org_name)
        self._check_name(team, "team")
        validate_description(description)
        self.session.add(Team(org_id=org.id, name=team, description=description))
        self.audit.add(Event("team.created", target=f"{org_name}/{team}"))
        commit_or_conflict(self.session, f"the team {team!r} already exists in {org_name!r}")
        return self.team(org_name, team)

    def delete_team(self, org_name: str, team: str) -> None:
        # its members and permissions go with it (ON DELETE CASCADE)
        self.session.delete(self._team(org_name, team))
        self.audit.add(Event("team.deleted", target=f"{org_name}/{team}"))
        self.session.commit()

    def team(self, org_name: str, team: str) -> TeamView:
        return self._team_view(self._team(org_name, team))

    def add_member(self, org_name: str, team: str, username: str) -> None:
        validate_username(username)
        row = self._team(org_name, team)
        if self._member(row, username) is not None:
            return
        self.session.add(TeamMember(team_id=row.id, username=username))
        self.audit.add(Event("team.member_added", target=f"{org_name}/{team}",
                             detail=f"user={username}"))
        commit_or_conflict(self.session, f"the team {team!r} changed concurrently; retry")

    def remove_member(self, org_name: str, team: str, username: str) -> None:
        found = self._member(self._team(org_name, team), username)
        if found is None:
            raise NotFound(f"{username[:300]!r} is not in the team {team!r}")
        self.session.delete(found)
        self.audit.add(Event("team.member_removed", target=f"{org_name}/{team}",
                             detail=f"user={username}"))
        self.session.commit()

    def set_permission(self, org_name: str, team: str, target: str, permission: str) -> None:
        """Give the team ``permission`` on ``target`` (``org/*`` or ``org/repo``), replacing
        what it had there."""
        validate_permission(permission)
        validate_team_target(org_name, target)
        row = self._team(org_name, team)
        found = self._permission(row, target)
        if found is None:
            self.session.add(TeamPermission(team_id=row.id, target=target,
                                            permission=permission))
        else:
            found.permission = permission
        self.audit.add(Event("team.permission_set", target=f"{org_name}/{team}",
                             detail=f"{target} {permission}"))
        commit_or_conflict(self.session, f"the team {team!r} changed concurrently; retry")

    def remove_permission(self, org_name: str, team: str, target: str) -> None:
        found = self._permission(self._team(org_name, team), target)
        if found is None:
            raise NotFound(f"the team {team!r} has no permission on {target[:300]!r}")
        self.session.delete(found)
        self.audit.add(Event("team.permission_removed", target=f"{org_name}/{team}",
                             detail=target))
        self.session.commit()

    # -- helpers ----------------------------------------------------------------------------
    def _find(self, name: str) -> Organization | None:
        found: Organization | None = self.session.execute(
            select(Organization).where(Organization.name == name)).scalar()
        return found

    def _get(self, name: str) -> Organization:
        org = self._find(name)
        if org is None:
            raise NotFound(f"organisation {name[:300]!r} does not exist")
        return org

    def _user_exists(self, name: str) -> bool:
        return self.session.execute(
            select(User.id).where(User.username == name)).first() is not None

    def _owner_row(self, org: Organization, username: str) -> OrgOwner | None:
        found: OrgOwner | None = self.session.execute(select(OrgOwner).where(
            OrgOwner.org_id == org.id, OrgOwner.username == username)).scalar()
        return found

    def _member(self, team: Team, username: str) -> TeamMember | None:
        found: TeamMember | None = self.session.execute(select(TeamMember).where(
            TeamMember.team_id == team.id, TeamMember.username == username)).scalar()
        return found

    def _permission(self, team: Team, target: str) -> TeamPermission | None:
        found: TeamPermission | None = self.session.execute(select(TeamPermission).where(
            TeamPermission.team_id == team.id, TeamPermission.target == target)).scalar()
        return found

    def _team(self, org_name: str, team: str) -> Team:
        org = self._get(org_name)
        found: Team | None = self.session.execute(
            select(Team).where(Team.org_id == org.id, Team.name == team)).scalar()
        if found is None:
            raise NotFound(f"the team {team[:300]!r} does not exist in {org_name!r}")
        return found

    @staticmethod
    def _check_name(name: str, kind: str) -> None:
        """InvalidName naming ``kind`` (organisation, team) unless ``name`` is one."""
        try:
            validate_username(name)
        except InvalidName:
            raise InvalidName(f"invalid {kind} name {name[:300]!r}: use lower-case letters and "
                              "digits, with . _ __ or - between them") from None

    def _team_view(self, team: Team) -> TeamView:
        members = tuple(self.session.execute(
            select(TeamMember.username).where(TeamMember.team_id == team.id)
            .order_by(TeamMember.username)).scalars())
        permissions = tuple((t, p) for t, p in self.session.execute(
            select(TeamPermission.target, TeamPermission.permission)
            .where(TeamPermission.team_id == team.id).order_by(TeamPermission.target)).all())
        return TeamView(team.name, team.description, members, permissions)

    def _repository_count(self, name: str) -> int:
        return int(self.session.execute(select(func.count(Repository.id)).where(
            Repository.name.startswith(f"{name}/", autoescape=True))).scalar_one())

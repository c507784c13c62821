"""Grants: which user names may pull, push or delete on a repository or a namespace ``ns/*``.

A grant names a user by user name, whether or not an account of that name exists. Methods raise
AuthsvcError subclasses; a refused change leaves the database untouched.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from authsvc.core.policy import parse_actions
from authsvc.core.scopes import is_valid_component
from authsvc.db.accounts import commit_or_conflict, validate_username
from authsvc.db.audit import Audit, Event
from authsvc.db.models import DbSession, Grant
from authsvc.db.repositories import validate_repository_path
from authsvc.errors import InvalidName, NotFound


def validate_target(target: str) -> str:
    """A grant target (or an access token's limit) is a repository path or a namespace
    written ``ns/*``: returns it, or raises InvalidName."""
    if target.endswith("/*"):
        namespace = target[:-2]
        if not is_valid_component(namespace):
            raise InvalidName(f"invalid namespace {namespace[:300]!r} in grant target")
        return target
    return validate_repository_path(target)


@dataclass(frozen=True)
class GrantRow:
    username: str
    target: str
    actions: tuple[str, ...]


class Grants:
    """Grants over one SQLAlchemy session. The token path reads them through ``Authorizer``."""

    def __init__(self, session: DbSession, audit: Audit) -> None:
        self.session = session
        self.audit = audit

    def grant(self, username: str, target: str, actions: str | Sequence[str]) -> GrantRow:
        """Give the user name ``username`` exactly ``actions`` on ``target``, replacing an
        earlier grant, and return it. The name need not have an account (the answer never
        tells whether it has). Raises InvalidName for a bad name or target, InvalidRequest
        for bad actions, Conflict when a concurrent change won."""
        validate_username(username)
        validate_target(target)
        wanted = ",".join(sorted(parse_actions(actions)))
        row = self._row(username, target)
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
        row = self._row(username, target)
        if row is None:
            raise NotFound(f"{username[:300]!r} has no grant on {target[:300]!r}")
        self.session.delete(row)
        self.audit.add(Event("grant.revoked", target=target, detail=f"user={username}"))
        self.session.commit()

    def _row(self, username: str, target: str) -> Grant | None:
        return self.session.execute(
            select(Grant).where(Grant.username == username, Grant.target == target)).scalar()

    def list_grants(self, target: str | None = None) -> list[GrantRow]:
        """Every grant (or those on ``target``), by target and user name."""
        query = select(Grant.username, Grant.target, Grant.actions)
        if target is not None:
            query = query.where(Grant.target == target)
        rows = self.session.execute(query.order_by(Grant.target, Grant.username)).all()
        return [GrantRow(u, t, tuple(a.split(","))) for u, t, a in rows]

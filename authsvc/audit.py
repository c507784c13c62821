"""The audit trail: who was given or refused which token, and who changed what.

Each event is stored in the database (in the same transaction as the change it describes) and
written as one JSON log line on the ``authsvc.audit`` logger. Events hold names, ids, addresses
and scopes, never a password or a token.
"""

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import scoped_session

from authsvc.models import AuditEvent

log = logging.getLogger("authsvc.audit")


@dataclass(frozen=True)
class Origin:
    """Who is acting and from where, for the events of one request or one CLI command."""

    actor: str = ""
    remote_addr: str = ""
    client_id: str = ""


# Origin is frozen, so sharing the default instance is safe.
_origin: ContextVar[Origin] = ContextVar("authsvc_audit_origin", default=Origin())  # noqa: B039


@contextmanager
def acting_as(origin: Origin) -> Iterator[None]:
    """Attribute the events recorded inside the block to ``origin``."""
    token = _origin.set(origin)
    try:
        yield
    finally:
        _origin.reset(token)


def set_origin(origin: Origin) -> None:
    """Attribute the rest of this context's events to ``origin`` (one web request)."""
    _origin.set(origin)


def current_origin() -> Origin:
    return _origin.get()


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


@dataclass(frozen=True)
class Event:
    action: str
    target: str = ""
    service: str = ""
    requested: str = ""
    granted: str = ""
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Audit:
    def __init__(self, session: scoped_session) -> None:  # type: ignore[type-arg]
        self.session = session

    def add(self, event: Event, *, actor: str | None = None) -> None:
        """Stage ``event`` in the session (the caller commits) and log it as one JSON line."""
        origin = current_origin()
        row = AuditEvent(
            at=datetime.now(UTC), action=event.action,
            actor=_clip(origin.actor if actor is None else actor, 300),
            target=_clip(event.target, 600), remote_addr=_clip(origin.remote_addr, 64),
            client_id=_clip(origin.client_id, 128), service=_clip(event.service, 255),
            requested=_clip(event.requested, 4000), granted=_clip(event.granted, 4000),
            detail=_clip(event.detail, 1000))
        self.session.add(row)
        line = {k: v for k, v in asdict(event).items() if v and k != "extra"}
        line.update({"at": row.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "actor": row.actor,
                     "remote_addr": row.remote_addr, "client_id": row.client_id,
                     **event.extra})
        log.info(json.dumps(line, sort_keys=True, ensure_ascii=False))

    def record(self, event: Event, *, actor: str | None = None) -> None:
        """Add ``event`` and commit it on its own (for events with no change to go with)."""
        self.add(event, actor=actor)
        self.session.commit()

    def search(self, *, actor: str | None = None, action: str | None = None,
               target: str | None = None, since: datetime | None = None,
               offset: int = 0, limit: int | None = 100) -> tuple[Sequence[AuditEvent], int]:
        """Events newest first, filtered by exact actor, action prefix and target, and the
        total that match."""
        where = []
        if actor is not None:
            where.append(AuditEvent.actor == actor)
        if action:
            where.append(AuditEvent.action.startswith(action, autoescape=True))
        if target is not None:
            where.append(AuditEvent.target == target)
        if since is not None:
            where.append(AuditEvent.at >= since)
        total = self.session.execute(select(func.count(AuditEvent.id)).where(*where)).scalar_one()
        rows = self.session.execute(
            select(AuditEvent).where(*where).order_by(AuditEvent.id.desc())
            .offset(offset).limit(limit)).scalars().all()
        return rows, int(total)

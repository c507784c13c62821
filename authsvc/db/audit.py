"""The audit trail: who was given or refused which token, and who changed what.

Each event is stored in the database (in the same transaction as the change it describes) and
written as one JSON log line on the ``authsvc.db.audit`` logger. Events hold names, ids, addresses
and scopes, never a password or a token.
"""

import atexit
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from authsvc.core.escaping import one_line
from authsvc.core.process_id import current_pid
from authsvc.db.models import AuditEvent, DbSession, engine_of
from authsvc.observability.log_lines import info_line

log = logging.getLogger("authsvc.audit")
#: The actions of a request that was refused; every other action is something that happened.
REFUSED_ACTIONS = ("token.refused", "login.failed")


@dataclass(frozen=True)
class Origin:
    """Who is acting and from where, for the events of one request or one CLI command."""

    actor: str = ""
    remote_addr: str = ""
    client_id: str = ""


#: Nobody from nowhere: the origin outside any request or command, and at the start of each
#: request. (Origin is frozen, so sharing one instance is safe.)
NO_ORIGIN = Origin()
_origin: ContextVar[Origin] = ContextVar("authsvc_audit_origin", default=NO_ORIGIN)


def enter_origin(origin: Origin) -> Token[Origin]:
    """Attribute this context's events to ``origin`` until ``leave_origin`` is given the token
    returned (the start of one web request, or of a block; see ``acting_as``)."""
    return _origin.set(origin)


def leave_origin(token: Token[Origin]) -> None:
    """Undo ``enter_origin`` and every origin set since: the context's events are again
    attributed as before it (the end of a request). Raises ValueError for a token of another
    context, RuntimeError for one used already."""
    _origin.reset(token)


@contextmanager
def acting_as(origin: Origin) -> Iterator[None]:
    """Attribute the events recorded inside the block to ``origin``."""
    token = enter_origin(origin)
    try:
        yield
    finally:
        leave_origin(token)


def set_origin(origin: Origin) -> None:
    """Attribute the rest of this context's events to ``origin``: inside a request, until its
    end (``leave_origin``)."""
    _origin.set(origin)


def current_origin() -> Origin:
    return _origin.get()


def set_actor(actor: str) -> None:
    """The rest of this context's events are ``actor``'s (once the request's credentials
    proved who it is)."""
    origin = _origin.get()
    _origin.set(Origin(actor, origin.remote_addr, origin.client_id))


def _clip(text: str, size: int) -> str:
    """At most ``size`` characters, NUL shown as ``\\0`` (databases cannot store it)."""
    if "\x00" in text:
        text = text.replace("\x00", "\\0")
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


def utc_now() -> datetime:
    """The current time in UTC: the default clock of Audit."""
    return datetime.now(UTC)


#: ``json.dumps(line, sort_keys=True, ensure_ascii=False)``, without making an encoder per line.
_LINE_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)


def _columns(event: Event, actor: str | None, now: datetime) -> dict[str, Any]:
    """The audit row for ``event`` at ``now`` in the current origin; logs it as one JSON
    line."""
    origin = current_origin()
    values: dict[str, Any] = {
        "at": now, "action": event.action,
        "actor": _clip(origin.actor if actor is None else actor, 300),
        "target": _clip(event.target, 600), "remote_addr": _clip(origin.remote_addr, 64),
        "client_id": _clip(origin.client_id, 128), "service": _clip(event.service, 255),
        "requested": _clip(event.requested, 4000), "granted": _clip(event.granted, 4000),
        "detail": _clip(event.detail, 1000)}
    if log.isEnabledFor(logging.INFO):
        line = {key: value for key, value in values.items() if value and key not in _ALWAYS}
        line.update({"at": now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
                     "actor": values["actor"],
                     "remote_addr": values["remote_addr"], "client_id": values["client_id"],
                     **event.extra})
        # one line whatever the fields hold, even through another formatter than authsvc's
        info_line(log, one_line(_LINE_JSON.encode(line)))
    return values


#: Fields every log line has, empty or not.
_ALWAYS = frozenset({"at", "actor", "remote_addr", "client_id"})


#: Batched events that wake the writer before its interval is up. Under load a worker would
#: otherwise hold a second's tokens (thousands of rows) before each write, and keep the memory
#: of that peak for good (Python's allocator hands little back); 256 rows is a few hundred kB.
BATCH_ROWS = 256


class Audit:
    """Writes audit events. ``batch_seconds`` > 0 lets high-volume events (tokens issued) be
    written in one transaction per interval by a background thread instead of one per request,
    or as soon as ``batch_rows`` are waiting; 0 writes every event at once. ``clock`` gives
    each event's time (aware, UTC)."""

    def __init__(self, session: DbSession, batch_seconds: float = 0,
                 *, clock: Callable[[], datetime] = utc_now,
                 batch_rows: int = BATCH_ROWS) -> None:
        self.session = session
        self.batch_seconds = batch_seconds
        self.batch_rows = batch_rows
        self.clock = clock
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._full = threading.Event()
        self._engine: Engine | None = None
        self._flusher_pid: int | None = None

    def add(self, event: Event, *, actor: str | None = None) -> None:
        """Stage ``event`` in the session (the caller commits) and log it as one JSON line."""
        self.session.add(AuditEvent(**_columns(event, actor, self.clock())))

    def write(self, connection: Connection, event: Event, *, actor: str | None = None) -> None:
        """Insert ``event`` on ``connection``, in its transaction (work done with SQLAlchemy
        Core instead of the session), and log it as one JSON line."""
        connection.execute(insert(AuditEvent).values(**_columns(event, actor, self.clock())))

    def record(self, event: Event, *, actor: str | None = None) -> None:
        """Add ``event`` and commit it on its own (for events with no change to go with)."""
        self.add(event, actor=actor)
        self.session.commit()

    def record_soon(self, event: Event, *, actor: str | None = None) -> None:
        """Record ``event`` within ``batch_seconds`` (at once when batching is off)."""
        if self.batch_seconds <= 0:
            self.record(event, actor=actor)
            return
        values = _columns(event, actor, self.clock())
        with self._lock:
            if self._flusher_pid != current_pid():  # first use in this process
                self._pending = []  # a forked worker's parent writes its own rows
                self._flusher_pid = current_pid()
                threading.Thread(target=self._flush_forever, name="audit-flush",
                                 daemon=True).start()
                atexit.register(self.flush)
            self._pending.append(values)
            if self._engine is None:
                self._engine = engine_of(self.session)
            # once per batch_rows rows, not again for each row that comes while the writer
            # (a thread that may wait for the GIL a while) has not taken them yet
            if len(self._pending) % self.batch_rows == 0:
                self._full.set()

    def flush(self) -> None:
        """Write the pending batched events in one transaction."""
        with self._lock:
            rows, self._pending = self._pending, []
        if not rows or self._engine is None or self._flusher_pid != current_pid():
            return  # (rows a forked process inherited are its parent's to write)
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(AuditEvent), rows)
        except OperationalError:  # the database is away: keep them for the next try
            log.warning("could not write %d audit events; will retry", len(rows))
            with self._lock:
                self._pending = rows + self._pending
        except SQLAlchemyError:  # one bad row must not block the others: write them one by one
            for row in rows:
                try:
                    with self._engine.begin() as connection:
                        connection.execute(insert(AuditEvent), [row])
                except SQLAlchemyError:
                    log.exception("dropped an audit event the database refused: %s",
                                  row.get("action"))

    def _flush_forever(self) -> None:
        while True:
            self._full.wait(self.batch_seconds)
            self._full.clear()
            self.flush()

    def search(self, *, actor: str | None = None, action: str | None = None,
               target: str | None = None, since: datetime | None = None,
               until: datetime | None = None, outcome: str | None = None,
               offset: int = 0, limit: int | None = 100) -> tuple[Sequence[AuditEvent], int]:
        """Events newest first, filtered by exact actor, action prefix and target, time
        (``since`` <= at < ``until``) and ``outcome`` (``refused``: a refused token or a
        failed login; ``succeeded``: anything else), and the total that match."""
        where: list[ColumnElement[bool]] = []
        if outcome == "refused":
            where.append(AuditEvent.action.in_(REFUSED_ACTIONS))
        elif outcome == "succeeded":
            where.append(AuditEvent.action.not_in(REFUSED_ACTIONS))
        if until is not None:
            where.append(AuditEvent.at < until)
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

"""Reads for the token path: statements compiled once, run on a pooled DBAPI connection that
the thread keeps.

Every ``GET /token`` looks up a repository, grants, a user or a refresh token. Through the ORM
session one lookup costs about 100 µs of Python (unit of work, identity map, teardown), through
a Core ``Connection`` about 30 µs, as a DBAPI cursor call with a pool checkout per read about
10 µs (on PostgreSQL about 40 µs more, the pre-ping), and on a connection the thread keeps about
5 µs. So the statements are written with SQLAlchemy (module-level constants in the services that
use them: ``accounts``, ``access``, …), compiled once per dialect, and run here; each column goes
through the type's own result processor (SQLite's text dates become datetimes), and driver
errors become SQLAlchemy's (the API answers 503 for a database that is away). A connection found
dead is replaced at once and the read tried again, as the pool's pre-ping would.

The connections are the engine pool's, checked out and kept: at most the pool's ``pool_size``
(5) threads keep one, and the reads of any further thread check one out per read. So the pool
bounds every connection of a process, reads included (``pool_size + max_overflow``, 5 + 10),
and a thread that ends leaves its connection to the next thread.

On PostgreSQL a request announces the reads it is about to make (``Reads.ahead``) and its first
read runs them together, in one round trip (psycopg's pipeline mode): a password login's three
reads wait for the database once.

Reads see what other transactions have committed. Changes go through the ORM session of the
service that owns them, or ``write`` for small bookkeeping updates.
"""

import contextlib
import functools
import threading
import weakref
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import CompoundSelect, Select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

from authsvc.core.process_id import current_pid
from authsvc.db.models import DbSession, engine_of

Query: TypeAlias = "Select[*tuple[Any, ...]] | CompoundSelect[*tuple[Any, ...]]"


Processor = Callable[[Any], Any] | None


@dataclass
class Prepared:
    """One statement compiled for one dialect."""

    sql: str
    positions: tuple[str, ...] | None  # parameter order for positional paramstyles
    columns: list[Any]
    #: A row (a named tuple of the columns) from its values.
    row: Callable[[Iterable[Any]], Any]
    #: The columns' result processors, made at the first execution (they may depend on the
    #: driver's type codes in ``cursor.description``).
    processors: tuple[Processor, ...] | None = None

    def arguments(self, params: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        return params if self.positions is None else [params[name] for name in self.positions]

    def convert(self, raw: Sequence[Any], dialect: Any, description: Sequence[Any]) -> Any:
        processors = self.processors
        if processors is None:
            processors = self.processors = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, described[1])
                for column, described in zip(self.columns, description, strict=True))
        if not any(processors):  # most reads: no column to convert
            return self.row(raw)
        return self.row([value if fn is None or value is None else fn(value)
                         for fn, value in zip(processors, raw, strict=True)])


@dataclass
class Kept:
    """A pooled connection kept for one thread (by the process that checked it out)."""

    pid: int
    thread: threading.Thread
    connection: Any = None  # a PoolProxiedConnection; None once released


def _release(kept: Sequence[Kept]) -> None:
    """Close the connections of ``kept`` that this process checked out, handing their slots
    back to the pool (a forked child leaves its parent's alone: PostgreSQL would end the
    parent's session)."""
    for entry in kept:
        if entry.pid != current_pid():
            continue  # still referenced, so that nothing closes it on collection either
        connection, entry.connection = entry.connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.invalidate()  # closes it, and checks it in


def _set_autocommit(connection: Any, on: Any) -> Any:
    """Set the driver's autocommit where it has one (so no read leaves a transaction open);
    returns the value it had, for ``_checkin``."""
    driver: Any = connection.dbapi_connection
    if not hasattr(driver, "autocommit"):
        return None
    before = driver.autocommit
    if before != on:
        driver.autocommit = on
    return before


#: Where a connection checked out for one read notes its driver's autocommit before.
AUTOCOMMIT_BEFORE = "authsvc.reads.autocommit"


def _checkin(connection: Any) -> None:
    """Give a connection checked out for one read back to the pool, as it was."""
    _set_autocommit(connection, connection.info.pop(AUTOCOMMIT_BEFORE, None))
    connection.close()


def _execute(connection: Any, sql: str, arguments: Any) -> tuple[list[Any], Any]:
    """Run ``sql``: every row (all of it: SQLite ends the read there) and the description."""
    cursor = connection.cursor()
    try:
        cursor.execute(sql, arguments)
        return cursor.fetchall(), cursor.description
    finally:
        try:  # (not contextlib.suppress: this runs for every read)
            cursor.close()
        except Exception:  # noqa: S110 - the read's own outcome is what counts
            pass


def _execute_together(connection: Any, batch: Sequence[tuple[str, Any]],
                      ) -> list[tuple[list[Any], Any]]:
    """Run every statement of ``batch`` in one round trip (psycopg's pipeline mode): each
    one's rows and description, in order."""
    driver: Any = connection.driver_connection
    cursors = [driver.cursor() for _ in batch]
    try:
        with driver.pipeline():
            for cursor, (sql, arguments) in zip(cursors, batch, strict=True):
                cursor.execute(sql, arguments)
        return [(cursor.fetchall(), cursor.description) for cursor in cursors]
    finally:
        for cursor in cursors:
            with contextlib.suppress(Exception):
                cursor.close()


Wanted: TypeAlias = "tuple[Query, Mapping[str, Any]]"


def _key(statement: Query, params: Mapping[str, Any]) -> tuple[int, tuple[Any, ...]]:
    return id(statement), tuple(sorted(params.items()))


@dataclass
class Ahead:
    """A thread's reads announced by ``Reads.ahead``: those not run yet, and the rows of those
    run and not taken yet."""

    queued: list[Wanted]
    rows: dict[tuple[int, tuple[Any, ...]], list[Any]]


#: The block of ``Reads.ahead`` where nothing is read ahead (it holds no state: one for all).
_NOTHING_AHEAD = contextlib.nullcontext()


class _ThreadReads(threading.local):
    """What ``Reads`` keeps per thread. The class attributes are each thread's start: a read
    finds ``None`` without the AttributeError (formatted, then dropped) that ``getattr`` with
    a default costs on a plain ``threading.local``."""

    kept: Kept | None = None
    ahead: Ahead | None = None


class Reads:
    """Runs read-only statements on the engine the ORM session is bound to, on connections of
    its pool that threads keep (see the module). One per app: ``Services`` hands the same one
    to every service.

    ``keep``: how many threads may keep a connection; default the pool's size (0 for a pool
    without one, such as NullPool: every read checks one out).
    """

    def __init__(self, session: DbSession,
                 keep: int | None = None) -> None:
        self.session = session
        self._keep = keep
        self._engine: Engine | None = None
        self._prepared: dict[int, tuple[Query, Prepared]] = {}
        self._lock = threading.Lock()
        self._local = _ThreadReads()
        #: Every kept connection, to hand to a new thread when its own has ended, and to close
        #: with this object.
        self._kept: list[Kept] = []
        weakref.finalize(self, _release, self._kept)

    @property
    def engine(self) -> Engine:
        """The engine, found through the session on first use (it needs the app context)."""
        if self._engine is None:
            self._engine = engine_of(self.session)
        return self._engine

    @property
    def keep(self) -> int:
        """How many threads may keep a connection."""
        if self._keep is None:
            size = getattr(self.engine.pool, "size", None)
            self._keep = size() if callable(size) else 0
        return self._keep

    @functools.cached_property
    def pipelines(self) -> bool:
        """Whether reads can be sent together: PostgreSQL through psycopg (3) with a libpq
        that has pipeline mode (14 and later)."""
        dialect = self.engine.dialect
        pipeline = getattr(dialect.loaded_dbapi, "Pipeline", None)
        return (dialect.name == "postgresql" and dialect.driver == "psycopg"
                and pipeline is not None and bool(pipeline.is_supported()))

    def _prepare(self, statement: Query) -> Prepared:
        found = self._prepared.get(id(statement))
        if found is not None:
            return found[1]
        dialect = self.engine.dialect
        compiled = statement.compile(dialect=dialect)
        columns = list(statement.selected_columns)
        row: Any = namedtuple("Row", [column.key for column in columns], rename=True)  # type: ignore[misc]
        prepared = Prepared(
            compiled.string,
            tuple(compiled.positiontup) if compiled.positional and compiled.positiontup
            else None,
            columns, row._make)
        with self._lock:  # the statement is kept so that its id is never reused
            self._prepared[id(statement)] = (statement, prepared)
        return prepared

    def _kept_connection(self) -> Kept | None:
        """This thread's kept connection, claimed on first use; None when ``keep`` threads
        keep one already (the read then checks one out)."""
        kept = self._local.kept
        if kept is not None and kept.connection is not None and kept.pid == current_pid():
            return kept
        kept = self._claim()
        self._local.kept = kept  # None: this thread claims again at its next read
        return kept

    def _claim(self) -> Kept | None:
        """The connection of a thread that has ended, else a new one while fewer than ``keep``
        are kept, else None."""
        pid, me = current_pid(), threading.current_thread()
        with self._lock:
            mine = [entry for entry in self._kept if entry.pid == pid]
            for entry in mine:
                if entry.connection is not None and not entry.thread.is_alive():
                    entry.thread = me
                    return entry
            if len(mine) >= self.keep:
                return None
            kept = Kept(pid, me)
            self._kept.append(kept)  # the slot is taken before the (maybe slow) checkout
        try:
            kept.connection = self.engine.raw_connection()
            _set_autocommit(kept.connection, True)
        except BaseException:
            self._forget(kept)
            raise
        return kept

    def _forget(self, kept: Kept) -> None:
        """Close a kept connection and free its slot (after an error on it)."""
        with self._lock:
            if kept in self._kept:
                self._kept.remove(kept)
        _release([kept])

    def close(self) -> None:
        """Close every kept connection (they are closed too when this object is collected);
        a later read checks out new ones."""
        pid = current_pid()
        with self._lock:
            mine = [entry for entry in self._kept if entry.pid == pid]
            self._kept[:] = [entry for entry in self._kept if entry.pid != pid]
        _release(mine)

    def _checkout(self) -> Any:
        """A connection of the pool for one read (by a thread that keeps none), in
        autocommit; ``_checkin`` gives it back as it was."""
        connection = self.engine.raw_connection()
        try:
            connection.info[AUTOCOMMIT_BEFORE] = _set_autocommit(connection, True)
        except BaseException:
            connection.invalidate()
            raise
        return connection

    def _drop(self, kept: Kept | None, connection: Any) -> None:
        """Close the connection a read failed on (its state is unknown), kept or not."""
        if kept is not None:
            self._local.kept = None
            self._forget(kept)
        elif connection is not None:
            with contextlib.suppress(Exception):
                connection.invalidate()

    def ahead(self, wanted: Iterable[Wanted]) -> AbstractContextManager[None]:
        """Announce reads this thread is about to make (statements and their parameters), for
        the block this returns.

        On PostgreSQL the block's first read runs together with them, in one round trip, and
        a later read of exactly one of them (statement and parameters) takes its rows from
        there, once; the rows not taken are dropped when the block ends. So a request that
        makes three reads waits for the database once, and each read still sees the database
        as it was during that request. Elsewhere (SQLite: a read is no round trip; a driver
        without psycopg's pipeline mode) ``wanted`` is not even looked at, and the block is
        one that does nothing; so is a block inside another (the outer one's announcement
        stands).
        """
        if not self.pipelines or self._local.ahead is not None:
            return _NOTHING_AHEAD
        return self._reading_ahead(wanted)

    @contextlib.contextmanager
    def _reading_ahead(self, wanted: Iterable[Wanted]) -> Iterator[None]:
        self._local.ahead = Ahead(list(wanted), {})
        try:
            yield
        finally:
            self._local.ahead = None

    def _run(self, statement: Query, params: Mapping[str, Any]) -> list[Any]:
        ahead = self._local.ahead
        if ahead is None:  # one read (no list of one, made and taken apart: every read)
            one = self._prepare(statement)
            raw, description = self._run_batch([(one.sql, one.arguments(params))])[0]
            dialect = self.engine.dialect
            return [one.convert(row, dialect, description) for row in raw]
        key = _key(statement, params)
        if key in ahead.rows:
            return ahead.rows.pop(key)
        batch = [(statement, params)]
        batch += [(s, p) for s, p in ahead.queued if _key(s, p) != key]
        ahead.queued = []
        results = self._run_together(batch)
        for (s, p), rows in zip(batch[1:], results[1:], strict=True):
            ahead.rows[_key(s, p)] = rows
        return results[0]

    def _run_together(self, wanted: Sequence[Wanted]) -> list[list[Any]]:
        """The rows of each statement of ``wanted``, in one round trip."""
        prepared = [self._prepare(statement) for statement, _ in wanted]
        results = self._run_batch([(one.sql, one.arguments(params))
                                   for one, (_, params) in zip(prepared, wanted, strict=True)])
        dialect = self.engine.dialect
        return [[one.convert(row, dialect, description) for row in raw]
                for one, (raw, description) in zip(prepared, results, strict=True)]

    def _run_batch(self, batch: Sequence[tuple[str, Any]]) -> list[tuple[list[Any], Any]]:
        """Run the compiled statements of ``batch`` (more than one: in one round trip) on this
        thread's connection: each one's raw rows and description. A connection that died
        while idle is replaced and the batch tried once more; driver errors become
        SQLAlchemy's."""
        dialect = self.engine.dialect
        for attempt in (1, 2):
            kept = connection = None
            try:
                kept = self._kept_connection()
                connection = kept.connection if kept is not None else self._checkout()
                results = (_execute_together(connection, batch) if len(batch) > 1
                           else [_execute(connection, *batch[0])])
                if kept is None:
                    _checkin(connection)
                return results
            except dialect.loaded_dbapi.Error as error:
                gone = connection is not None and dialect.is_disconnect(
                    error, connection.dbapi_connection, None)
                self._drop(kept, connection)
                if gone and attempt == 1:
                    continue  # the connection died while idle: once more on a new one
                raise DBAPIError.instance(batch[0][0], batch[0][1], error,
                                          dialect.loaded_dbapi.Error,
                                          connection_invalidated=gone,
                                          dialect=dialect) from error
            except BaseException:
                self._drop(kept, connection)
                raise
        raise AssertionError("unreachable: the second attempt returns or raises")

    def first(self, statement: Query, params: Mapping[str, Any]) -> Any | None:
        """The first row (a named tuple) or None."""
        rows = self._run(statement, params)
        return rows[0] if rows else None

    def all(self, statement: Query, params: Mapping[str, Any]) -> list[Any]:
        return self._run(statement, params)

    def write(self, statement: Executable, params: Mapping[str, Any]) -> None:
        """One small change in its own transaction (bookkeeping such as last-used times)."""
        with self.engine.begin() as connection:
            connection.execute(statement, params)

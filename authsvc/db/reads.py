"""Reads for the token path: statements compiled once, run on a DBAPI connection per thread.

Every ``GET /token`` looks up a repository, grants, a user or a refresh token. Through the ORM
session one lookup costs about 100 µs of Python (unit of work, identity map, teardown), through
a Core ``Connection`` about 30 µs, as a DBAPI cursor call on a pooled connection about 10 µs,
and on a connection the thread keeps about 5 µs. So the statements are written with SQLAlchemy
(module-level constants in the services that use them: ``accounts``, ``repositories``, …),
compiled once per dialect, and run here; each column goes through the type's own result
processor (SQLite's text dates become datetimes), and driver errors become SQLAlchemy's (the API
answers 503 for a database that is away). A connection found dead is replaced at once and the
read tried again, as the pool's pre-ping would.

Reads see what other transactions have committed. Changes go through the ORM session of the
service that owns them, or ``write`` for small bookkeeping updates.
"""

import contextlib
import os
import threading
import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import Select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import scoped_session
from sqlalchemy.sql import Executable

Query: TypeAlias = "Select[*tuple[Any, ...]]"


Processor = Callable[[Any], Any] | None


@dataclass
class Prepared:
    """One statement compiled for one dialect."""

    sql: str
    positions: tuple[str, ...] | None  # parameter order for positional paramstyles
    columns: list[Any]
    row: Callable[..., Any]
    #: The columns' result processors, made at the first execution (they may depend on the
    #: driver's type codes in ``cursor.description``).
    processors: tuple[Processor, ...] | None = None

    def arguments(self, params: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        return params if self.positions is None else [params[name] for name in self.positions]

    def convert(self, raw: Sequence[Any], dialect: Any, description: Sequence[Any]) -> Any:
        if self.processors is None:
            self.processors = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, described[1])
                for column, described in zip(self.columns, description, strict=True))
        return self.row(*(value if fn is None or value is None else fn(value)
                          for fn, value in zip(self.processors, raw, strict=True)))


def _close(connections: list[tuple[int, Any]]) -> None:
    """Close the connections this process opened (a forked child must not close its parent's:
    PostgreSQL would end the parent's session)."""
    for pid, connection in connections:
        if pid == os.getpid():
            with contextlib.suppress(Exception):
                connection.close()


class Reads:
    """Runs read-only statements on the engine the ORM session is bound to, each thread on a
    connection of its own that it keeps (a pool checkout per read costs as much as the read).
    One per app: ``Services`` hands the same one to every service."""

    def __init__(self, session: scoped_session) -> None:  # type: ignore[type-arg]
        self.session = session
        self._engine: Engine | None = None
        self._prepared: dict[int, tuple[Query, Prepared]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        #: Every thread's connection and the process that opened it, to close with this object.
        self._open: list[tuple[int, Any]] = []
        weakref.finalize(self, _close, self._open)

    @property
    def engine(self) -> Engine:
        """The engine, found through the session on first use (it needs the app context)."""
        if self._engine is None:
            self._engine = self.session.get_bind()  # type: ignore[assignment]
        return self._engine  # type: ignore[return-value]

    def _prepare(self, statement: Query) -> Prepared:
        found = self._prepared.get(id(statement))
        if found is not None:
            return found[1]
        dialect = self.engine.dialect
        compiled = statement.compile(dialect=dialect)
        columns = list(statement.selected_columns)
        prepared = Prepared(
            compiled.string,
            tuple(compiled.positiontup) if compiled.positional and compiled.positiontup
            else None,
            columns,
            namedtuple("Row", [column.key for column in columns], rename=True))  # type: ignore[misc]
        with self._lock:  # the statement is kept so that its id is never reused
            self._prepared[id(statement)] = (statement, prepared)
        return prepared

    def _connection(self) -> Any:
        """This thread's connection, made on first use: taken from the engine's pool (so it is
        set up as every other) and detached from it, in autocommit where the driver has it, so
        no read ever leaves a transaction open."""
        held = getattr(self._local, "held", None)
        if held is not None and held[0] == os.getpid():
            return held[1]
        connection = self.engine.raw_connection()
        connection.detach()
        driver: Any = connection.dbapi_connection
        if hasattr(driver, "autocommit"):
            driver.autocommit = True
        held = (os.getpid(), connection)
        self._local.held = held
        with self._lock:
            self._open.append(held)
        return connection

    def _forget_connection(self) -> None:
        held = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None and held[0] == os.getpid():
            with self._lock:
                self._open.remove(held)
            _close([held])

    def close(self) -> None:
        """Close every thread's connection (they are closed too when this object is
        collected)."""
        with self._lock:
            connections, self._open[:] = list(self._open), []
        _close(connections)

    def _run(self, statement: Query, params: Mapping[str, Any]) -> list[Any]:
        prepared = self._prepare(statement)
        arguments = prepared.arguments(params)
        dialect = self.engine.dialect
        for attempt in (1, 2):
            connection = cursor = None
            try:
                connection = self._connection()
                cursor = connection.cursor()
                cursor.execute(prepared.sql, arguments)
                raw = cursor.fetchall()  # all of it: SQLite ends the read there
                description = cursor.description
                break
            except dialect.loaded_dbapi.Error as error:
                gone = connection is not None and dialect.is_disconnect(
                    error, connection.dbapi_connection, cursor)
                self._forget_connection()
                if gone and attempt == 1 and cursor is not None:
                    continue  # the connection died while idle: once more on a new one
                raise DBAPIError.instance(prepared.sql, arguments, error,
                                          dialect.loaded_dbapi.Error,
                                          connection_invalidated=gone,
                                          dialect=dialect) from error
            finally:
                if cursor is not None:
                    with contextlib.suppress(Exception):
                        cursor.close()
        return [prepared.convert(row, dialect, description) for row in raw]

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

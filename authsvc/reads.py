"""Reads for the token path: Core statements on a pooled connection, with no ORM session.

Every ``GET /token`` looks up a repository, grants, a user or a refresh token. Through the ORM
session each lookup costs about 100 µs of Python (unit of work, identity map, teardown); a Core
statement built once and run on a pooled connection costs about 20 µs. The statements live at
module level in the services that use them (``accounts``, ``repositories``, …), so SQLAlchemy
compiles each one once per process and finds it in its statement cache afterwards.

Reads see what other transactions have committed. Changes still go through the ORM session of
the service that owns them.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Executable, Row
from sqlalchemy.engine import Engine
from sqlalchemy.orm import scoped_session


class Reads:
    """Runs read-only statements on the engine the ORM session is bound to."""

    def __init__(self, session: scoped_session) -> None:  # type: ignore[type-arg]
        self.session = session
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """The engine, found through the session on first use (it needs the app context)."""
        if self._engine is None:
            self._engine = self.session.get_bind()  # type: ignore[assignment]
        return self._engine  # type: ignore[return-value]

    def first(self, statement: Executable, params: Mapping[str, Any]) -> Row[Any] | None:
        with self.engine.connect() as connection:
            return connection.execute(statement, params).first()

    def all(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Row[Any]]:
        with self.engine.connect() as connection:
            return connection.execute(statement, params).all()

    def write(self, statement: Executable, params: Mapping[str, Any]) -> None:
        """One small change in its own transaction (bookkeeping such as last-used times)."""
        with self.engine.begin() as connection:
            connection.execute(statement, params)

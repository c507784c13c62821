"""What the database does with each kind of search (``python -m bench.search_sql``, run by
``--search`` with the site's environment after the load): the SQL ``Repositories.search`` and
``Catalog.tag_counts`` send for it, captured as they run, each statement's plan (SQLite's
EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN ANALYZE) and how long the database alone takes for
it (the median over the kind's queries, each statement run ``--repeat`` times)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from statistics import median
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import Engine

from authsvc.core.policy import ANONYMOUS, Subject
from bench.search_kinds import SEARCH_KINDS, V1_PAGE_SIZE, SearchKind, queries
from bench.search_seed import namespace_count
from bench.seed import ADMIN, USER

#: ``GET /api/v1/repositories``' default page size.
API_PAGE_SIZE = 20
SUBJECTS = {"anon": ANONYMOUS, "user": Subject(USER), "admin": Subject(ADMIN, admin=True)}
Statement = tuple[str, Any]


@contextmanager
def captured(engine: Engine) -> Iterator[list[Statement]]:
    """The statements (SQL and parameters, as the driver gets them) sent on ``engine``
    meanwhile."""
    found: list[Statement] = []

    def note(_conn: Connection, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        found.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", note)


def search_statements(engine: Engine, kind: SearchKind, q: str) -> list[Statement]:
    """What one search of ``kind`` for ``q`` sends, as the API runs it: the grants read, the
    count, the page, the tag counts of the page."""
    from flask import current_app

    from authsvc.db.services import services_of

    state = services_of(current_app)
    with captured(engine) as found:
        rows, _ = state.repos.search(SUBJECTS[kind.who], q, 0,
                                     V1_PAGE_SIZE if kind.v1 else API_PAGE_SIZE,
                                     prefix=kind.queries == "prefix",
                                     sort="pushed" if kind.queries == "pushed" else "name")
        if not kind.v1:
            state.catalog.tag_counts([r.id for r in rows])
    state.repos.session.rollback()
    return found


def plan(connection: Connection, statement: Statement) -> list[str]:
    """The plan of ``statement``: SQLite's EXPLAIN QUERY PLAN, or PostgreSQL's EXPLAIN
    ANALYZE (costs off)."""
    sql, parameters = statement
    if connection.dialect.name == "postgresql":
        rows = connection.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) " + sql, parameters)
        return [str(row[0]) for row in rows]
    rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)
    depth: dict[int, int] = {0: 0}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, 0) + 1
        lines.append("  " * (depth[node] - 1) + str(detail))
    return lines


def run_ms(connection: Connection, statement: Statement, repeat: int) -> float:
    """The median time of ``statement`` (all its rows fetched) in ms, over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        connection.exec_driver_sql(*statement).fetchall()
        times.append(time.perf_counter() - started)
    return 1000 * median(times)


def kind_report(engine: Engine, kind: SearchKind, namespaces: int,
                repeat: int) -> dict[str, Any]:
    """The statements of ``kind``'s first query with their plans and times, and the median
    over its queries of the time all the statements of one search take."""
    listed = queries(kind, namespaces)
    with engine.connect() as connection:
        first = search_statements(engine, kind, listed[0])
        statements = [{"sql": sql[:2000], "ms": round(run_ms(connection, (sql, params),
                                                             repeat), 3),
                       "plan": plan(connection, (sql, params))} for sql, params in first]
        per_search = [sum(run_ms(connection, s, repeat) for s in
                          search_statements(engine, kind, q)) for q in listed]
    return {"example": listed[0], "db_ms": round(median(per_search), 3),
            "max_db_ms": round(max(per_search), 3), "statements": statements}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.search_sql")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--kinds", default=",".join(SEARCH_KINDS))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    from authsvc.app import create_app
    from authsvc.db.models import db, engine_of

    app = create_app()
    result: dict[str, Any] = {"kinds": {}}
    with app.app_context():
        engine = engine_of(db.session)
        for name in args.kinds.split(","):
            result["kinds"][name] = kind_report(engine, SEARCH_KINDS[name],
                                                namespace_count(args.scale), args.repeat)
    print("RESULT " + json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()

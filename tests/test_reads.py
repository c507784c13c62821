"""The token path's reads: the same rows, types and errors as SQLAlchemy would give, on
connections the engine's pool bounds."""

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, bindparam, create_engine, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import scoped_session, sessionmaker

from authsvc.core.opaque_secrets import as_utc
from authsvc.db.access import GRANTS_ON, VISIBILITY
from authsvc.db.models import RefreshToken, User, db
from authsvc.db.reads import Reads
from authsvc.db.refresh_tokens import REDEEM
from authsvc.db.schema import empty_postgres_database, upgrade
from authsvc.db.services import Services

#: Reaches PostgreSQL itself: kept in the PostgreSQL run.
pytestmark = pytest.mark.database

USERS = select(User.username, User.admin, User.created_at).where(
    User.username.like(bindparam("pattern"))).order_by(User.username)


def test_rows_match_what_sqlalchemy_itself_reads(app: Flask, state: Services) -> None:
    with app.app_context():
        state.accounts.create_user("alice", "correct horse", admin=True)
        state.accounts.create_user("bob", "correct horse")
        reads = Reads(db.session)
        rows = reads.all(USERS, {"pattern": "%"})
        expected = db.session.execute(USERS, {"pattern": "%"}).all()
    assert [tuple(row) for row in rows] == [tuple(row) for row in expected]
    assert [(row.username, row.admin) for row in rows] == [("alice", True), ("bob", False)]
    assert all(isinstance(row.created_at, datetime) for row in rows)
    with app.app_context():
        assert reads.first(USERS, {"pattern": "nobody"}) is None


def test_grants_are_read_by_user_name_in_one_round_trip(app: Flask, state: Services) -> None:
    """The token path's read of what a user holds through a namespace: the grants by user name
    (a name without an account holds its grants too), the teams' permissions and the
    organisation's ownership, in one statement."""
    read = str(GRANTS_ON)
    assert read.count("SELECT") == 3 and read.count("UNION ALL") == 2
    assert "users" not in read.split()  # no join on the accounts: names are enough
    with app.app_context():
        state.grants.grant("ghost", "alice/*", "pull")
        state.grants.grant("ghost", "alice/x", "push")
        state.grants.grant("ghost", "bob/x", "push")
        rows = Reads(db.session).all(GRANTS_ON, {"username": "ghost", "path": "alice/x",
                                                 "space": "alice/*", "namespace": "alice"})
    assert sorted((row.kind, row.target, row.what) for row in rows) == [
        ("grant", "alice/*", "pull"), ("grant", "alice/x", "push")]


def test_dates_come_back_as_datetimes_on_every_database(app: Flask, state: Services) -> None:
    """SQLite stores dates as text: the type's result processor turns them back."""
    with app.app_context():
        state.accounts.create_user("alice", "correct horse")
        secret = state.refresh_tokens.issue("alice", "registry", "docker")
        row = Reads(db.session).first(REDEEM, {"digest": db.session.execute(
            select(RefreshToken.secret_hash)).scalar_one()})
    assert secret
    assert row is not None and row.username == "alice" and row.last_used_at is None
    assert timedelta(days=89) < as_utc(row.expires_at) - datetime.now(UTC) <= timedelta(days=90)


def test_an_unreachable_database_raises_sqlalchemy_operational_error(tmp_path: Path) -> None:
    """The API's 503 handler knows SQLAlchemy's errors, not each driver's."""
    engine = create_engine(f"sqlite:///{tmp_path}/missing/dir/authsvc.db")
    reads = Reads(scoped_session(sessionmaker(bind=engine)))
    with pytest.raises(OperationalError):
        reads.first(USERS, {"pattern": "%"})
    engine.dispose()


def test_reads_see_every_commit_at_once(app: Flask, state: Services) -> None:
    """A kept connection must not keep a snapshot: each read sees what others committed."""
    with app.app_context():
        state.repos.create("alice/app", "private")
        reads = Reads(db.session)
        assert reads.first(VISIBILITY, {"path": "alice/app"}).visibility == "private"
        state.repos.set_visibility("alice/app", "public")
        assert reads.first(VISIBILITY, {"path": "alice/app"}).visibility == "public"
        state.repos.delete("alice/app")
        assert reads.first(VISIBILITY, {"path": "alice/app"}) is None
        reads.close()


#: A database of their own: beside the suite's (``AUTHSVC_TEST_DATABASE_URL``), so that runs on
#: different test databases never share it.
PG_URL = (os.environ.get("AUTHSVC_TEST_DATABASE_URL", "").partition("?")[0]
          or os.environ.get("AUTHSVC_TEST_PG_BASE", "postgresql+psycopg://postgres@127.0.0.1:5432")
          + "/authsvc_test") + "_reads"


@pytest.fixture
def pg_reads() -> Iterator[tuple[Reads, Engine]]:
    """Reads on a PostgreSQL database of their own (on every run, SQLite's included)."""
    try:
        empty_postgres_database(PG_URL)
    except OperationalError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL: {e}")
    engine = create_engine(PG_URL, pool_pre_ping=True)
    upgrade(engine)
    reads = Reads(scoped_session(sessionmaker(bind=engine)))
    yield reads, engine
    reads.close()
    engine.dispose()


def backend_of(reads: Reads, engine: Engine) -> tuple[int, str]:
    """The PostgreSQL backend pid of this thread's read connection, and its state as the
    server sees it."""
    pid = reads.first(select(func.pg_backend_pid()), {})[0]
    with engine.connect() as other:
        state = other.execute(text("SELECT state FROM pg_stat_activity WHERE pid = :pid"),
                              {"pid": pid}).scalar_one()
    return pid, state


def test_a_kept_postgres_connection_holds_no_transaction(
        pg_reads: tuple[Reads, Engine]) -> None:
    """An idle read connection inside a transaction would block migrations and TRUNCATE."""
    reads, engine = pg_reads
    first, _ = backend_of(reads, engine)
    reads.first(USERS, {"pattern": "%"})
    pid, state = backend_of(reads, engine)
    assert pid == first  # the same connection, kept
    assert state == "idle"


def test_a_connection_killed_while_idle_is_replaced_without_an_error(
        pg_reads: tuple[Reads, Engine]) -> None:
    """As the pool's pre-ping would: a database restart costs no failed request."""
    reads, engine = pg_reads
    pid, _ = backend_of(reads, engine)
    with engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        other.commit()
    assert reads.first(USERS, {"pattern": "%"}) is None
    assert backend_of(reads, engine)[0] != pid


# -- connections: the pool's, kept by at most ``keep`` threads ---------------------------------

def on_threads(reads: Reads, count: int, statement: Any = USERS) -> list[Any]:
    """Run one read on each of ``count`` threads, all alive at once until every one has read;
    the first row each read."""
    arrived = threading.Barrier(count)
    found: list[Any] = [None] * count

    def read(index: int) -> None:
        found[index] = reads.all(statement, {"pattern": "%"} if statement is USERS else {})
        arrived.wait(timeout=30)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return found


def test_connections_are_the_pools_and_kept_by_at_most_keep_threads(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/reads.db", pool_size=3, max_overflow=2)
    upgrade(engine)
    reads = Reads(scoped_session(sessionmaker(bind=engine)))
    assert reads.keep == 3
    reads.first(USERS, {"pattern": "%"})
    assert engine.pool.checkedout() == 1  # kept by this thread, counted by the pool
    assert on_threads(reads, 8) == [[]] * 8  # 8 at once on a pool of 5: nobody waits long
    assert engine.pool.checkedout() == 3  # this thread's and two more; the rest went back
    reads.close()
    assert engine.pool.checkedout() == 0
    engine.dispose()


def test_a_thread_that_ended_leaves_its_connection_to_the_next(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/reads.db", pool_size=1, max_overflow=0,
                           pool_timeout=2)
    upgrade(engine)
    reads = Reads(scoped_session(sessionmaker(bind=engine)))
    for _ in range(3):
        on_threads(reads, 1)
        assert engine.pool.checkedout() == 1
    reads.first(USERS, {"pattern": "%"})  # the pool's one connection, handed to this thread
    assert engine.pool.checkedout() == 1
    reads.close()
    engine.dispose()


def test_a_connection_checked_out_for_one_read_goes_back_as_it_was(
        pg_reads: tuple[Reads, Engine]) -> None:
    """A thread past ``keep`` reads in autocommit, and the ORM then gets the connection back
    with transactions: a rollback still undoes."""
    _, engine = pg_reads
    reads = Reads(scoped_session(sessionmaker(bind=engine)), keep=0)
    assert reads.first(USERS, {"pattern": "%"}) is None
    assert engine.pool.checkedout() == 0
    with engine.connect() as connection:
        assert connection.connection.dbapi_connection.autocommit is False  # type: ignore[union-attr]
        connection.execute(text("INSERT INTO users (username, admin, robot, disabled, created_at)"
                                " VALUES ('ghost', false, false, false, now())"))
        connection.rollback()
    assert reads.first(USERS, {"pattern": "%"}) is None

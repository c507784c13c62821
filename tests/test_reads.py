"""The token path's reads: the same rows, types and errors as SQLAlchemy would give, on
connections the engine's pool bounds."""

import os
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, bindparam, create_engine, event, func, insert, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import scoped_session, sessionmaker

from authsvc.core.opaque_secrets import as_utc
from authsvc.db.access import GRANTS_ON, VISIBILITY
from authsvc.db.models import RefreshToken, Repository, User, db
from authsvc.db.reads import Reads
from authsvc.db.refresh_tokens import REDEEM
from authsvc.db.schema import empty_postgres_database, upgrade
from authsvc.db.services import Services
from tests.conftest import PASSWORD, TEST_DATABASE_URL
from tests.token_helpers import Decode, access_of, get_token

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
#: different test databases never share it; the SQLite run's is another (``scripts/test`` runs
#: it beside the PostgreSQL run).
PG_URL = (os.environ.get("AUTHSVC_TEST_DATABASE_URL", "").partition("?")[0]
          or os.environ.get("AUTHSVC_TEST_PG_BASE", "postgresql+psycopg://postgres@127.0.0.1:5432")
          + "/authsvc_sqlite_run") + "_reads"


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


def test_a_forked_child_reads_on_a_connection_of_its_own(tmp_path: Path) -> None:
    """granian forks its workers: a connection the parent's thread kept is the parent's (on
    PostgreSQL, the child's use of it would be the parent's session)."""
    engine = create_engine(f"sqlite:///{tmp_path}/reads.db")
    upgrade(engine)
    reads = Reads(scoped_session(sessionmaker(bind=engine)))
    reads.first(USERS, {"pattern": "%"})
    parents = reads._local.kept
    assert parents is not None and parents.connection is not None
    child = os.fork()
    if child == 0:
        try:
            rows = reads.all(USERS, {"pattern": "%"})
            kept = reads._local.kept
            own = kept is not None and kept is not parents and kept.pid == os.getpid()
            os._exit(0 if own and rows == [] else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert reads.all(USERS, {"pattern": "%"}) == [] and reads._local.kept is parents
    reads.close()
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


# -- reads announced ahead: one round trip on PostgreSQL ---------------------------------------

class ProtocolTrace:
    """libpq's trace of every connection an engine opens from now on (its pool is emptied
    first; close the ``Reads``' kept connections too): what went over the wire, so a test can
    count the round trips (each ends with the client's ``Sync``)."""

    def __init__(self, engine: Engine, folder: Path) -> None:
        self.traced: list[tuple[Any, Path]] = []
        self.folder = folder
        engine.dispose()
        event.listen(engine, "connect", self._connected)

    def _connected(self, driver: Any, _record: Any) -> None:
        path = self.folder / f"trace-{len(self.traced)}.txt"
        self.traced.append((driver, path))
        self._trace(driver, path)

    @staticmethod
    def _trace(driver: Any, path: Path) -> None:
        with path.open("a") as out:  # libpq writes to its own copy of the descriptor
            driver.pgconn.trace(os.dup(out.fileno()))
        driver.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS
                                      | psycopg.pq.Trace.REGRESS_MODE)

    def round_trips(self) -> list[list[str]]:
        """The statements the client sent, grouped by round trip, on every traced
        connection."""
        trips: list[list[str]] = []
        for driver, path in self.traced:
            if not driver.closed:
                driver.pgconn.untrace()  # writes out what libpq holds
                self._trace(driver, path)
            messages: list[list[str]] = []  # a statement's new lines continue its message
            for line in path.read_text().splitlines():
                parts = line.split("\t")
                if parts[0] in ("F", "B") and len(parts) >= 3:
                    messages.append(parts)
                elif messages:
                    messages[-1][-1] += "\n" + line
            sent: list[str] = []
            for parts in messages:
                if parts[0] != "F":
                    continue
                if parts[2] in ("Parse", "Query"):
                    sent.append(" ".join(parts[3:]))
                elif parts[2] == "Sync" and sent:
                    trips.append(sent)
                    sent = []
        return trips


def seeded(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(insert(User.__table__), [
            {"username": "alice", "admin": False}, {"username": "bob", "admin": True}])
        connection.execute(insert(Repository.__table__),
                           [{"name": "alice/app", "visibility": "private"}])


def test_reads_announced_ahead_wait_for_the_database_once(
        pg_reads: tuple[Reads, Engine], tmp_path: Path) -> None:
    reads, engine = pg_reads
    seeded(engine)
    reads.close()
    trace = ProtocolTrace(engine, tmp_path)
    alone = (reads.all(USERS, {"pattern": "%"}), reads.first(VISIBILITY, {"path": "alice/app"}),
             reads.first(VISIBILITY, {"path": "bob/x"}))
    before = len(trace.round_trips())
    assert before == 3
    with reads.ahead([(VISIBILITY, {"path": "alice/app"}), (VISIBILITY, {"path": "bob/x"})]):
        together = (reads.all(USERS, {"pattern": "%"}),
                    reads.first(VISIBILITY, {"path": "alice/app"}),
                    reads.first(VISIBILITY, {"path": "bob/x"}))
    assert together == alone
    assert together[1].visibility == "private" and together[2] is None
    trips = trace.round_trips()[before:]
    assert len(trips) == 1 and len(trips[0]) == 3  # the three statements, one Sync


def test_a_block_inside_another_leaves_the_outer_announcement_standing(
        pg_reads: tuple[Reads, Engine], tmp_path: Path) -> None:
    reads, engine = pg_reads
    seeded(engine)
    reads.close()
    trace = ProtocolTrace(engine, tmp_path)
    reads.first(VISIBILITY, {"path": "bob/x"})  # the connection, before counting
    before = len(trace.round_trips())
    with reads.ahead([(VISIBILITY, {"path": "alice/app"})]):
        with reads.ahead([(VISIBILITY, {"path": "bob/x"})]):
            assert reads.first(VISIBILITY, {"path": "bob/x"}) is None
            assert reads.first(VISIBILITY, {"path": "alice/app"}).visibility == "private"
        assert reads._local.ahead is not None  # the inner block's end is not the outer's
    assert reads._local.ahead is None
    trips = trace.round_trips()[before:]
    assert [len(trip) for trip in trips] == [2]  # bob/x with alice/app, the outer's; no more


def test_rows_read_ahead_are_taken_once_and_never_after_the_block(
        pg_reads: tuple[Reads, Engine]) -> None:
    """Rows read ahead answer one read of the request that announced them: a second read of
    the same, or any read after the block (the next request), sees what was committed since."""
    reads, engine = pg_reads
    seeded(engine)

    def make_public() -> None:
        with engine.begin() as connection:
            connection.execute(text("UPDATE repositories SET visibility = 'public'"))

    with reads.ahead([(VISIBILITY, {"path": "alice/app"})]):
        reads.all(USERS, {"pattern": "%"})  # runs the announced read too
        make_public()
        assert reads.first(VISIBILITY, {"path": "alice/app"}).visibility == "private"
        assert reads.first(VISIBILITY, {"path": "alice/app"}).visibility == "public"
    with engine.begin() as connection:
        connection.execute(text("UPDATE repositories SET visibility = 'private'"))
    with reads.ahead([(VISIBILITY, {"path": "alice/app"})]):
        reads.all(USERS, {"pattern": "%"})
    make_public()
    assert reads.first(VISIBILITY, {"path": "alice/app"}).visibility == "public"


def test_a_read_announced_and_never_made_is_never_run(
        pg_reads: tuple[Reads, Engine], tmp_path: Path) -> None:
    reads, engine = pg_reads
    reads.close()
    trace = ProtocolTrace(engine, tmp_path)
    with reads.ahead([(VISIBILITY, {"path": "alice/app"})]):
        pass
    reads.all(USERS, {"pattern": "%"})
    assert [len(trip) for trip in trace.round_trips()] == [1]


def test_on_sqlite_nothing_is_read_ahead(tmp_path: Path) -> None:
    """SQLite reads are no round trips: the announced reads are not even looked at."""
    engine = create_engine(f"sqlite:///{tmp_path}/reads.db")
    upgrade(engine)
    reads = Reads(scoped_session(sessionmaker(bind=engine)))

    def announced() -> Iterator[Any]:
        raise AssertionError("looked at")
        yield

    with reads.ahead(announced()):
        assert reads.first(VISIBILITY, {"path": "alice/app"}) is None
    reads.close()
    engine.dispose()


def reads_by_round_trip(trace: ProtocolTrace, tables: Sequence[str]) -> list[set[str]]:
    """Per round trip that read any of ``tables``: which of them it read."""
    found = []
    for trip in trace.round_trips():
        read = {table for table in tables for sent in trip
                if "SELECT" in sent and f"\nFROM {table}" in sent}
        if read:
            found.append(read)
    return found


on_postgres_only = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="PostgreSQL's round trips: runs in the PostgreSQL run")


@on_postgres_only
def test_a_password_login_waits_for_the_database_once(
        app: Flask, client: FlaskClient, state: Services, make_user: Any, decode: Decode,
        tmp_path: Path) -> None:
    """``docker push``'s token: the lockout count, the user and the repository (and the
    grants of someone else's) read in one round trip."""
    make_user("alice")
    make_user("bob")
    state.repos.create("alice/app", "private")
    state.grants.grant("bob", "alice/app", "pull")
    for name in ("alice", "bob"):  # bcrypt once; then the credential cache answers
        get_token(client, "repository:alice/app:pull", auth=(name, PASSWORD))
    state.reads.close()
    trace = ProtocolTrace(db.engine, tmp_path)
    tables = ("login_failures", "users", "repositories", "grants")
    alice = get_token(client, "repository:alice/app:pull,push", auth=("alice", PASSWORD))
    assert access_of(decode, alice) == {"repository:alice/app": ["pull", "push"]}
    assert reads_by_round_trip(trace, tables) == [{"login_failures", "users", "repositories"}]
    bob = get_token(client, "repository:alice/app:pull,push", auth=("bob", PASSWORD))
    assert access_of(decode, bob) == {"repository:alice/app": ["pull"]}
    assert reads_by_round_trip(trace, tables)[1:] == [set(tables)]


@on_postgres_only
def test_a_refresh_grant_waits_for_the_database_once(
        app: Flask, client: FlaskClient, state: Services, make_user: Any, decode: Decode,
        tmp_path: Path) -> None:
    make_user("alice")
    state.repos.create("alice/app", "private")
    secret = state.refresh_tokens.issue("alice", "registry", "docker")
    form = {"grant_type": "refresh_token", "refresh_token": secret, "service": "registry",
            "client_id": "docker", "scope": "repository:alice/app:pull"}
    assert client.post("/token", data=form).status_code == 200  # notes its first use
    state.reads.close()
    trace = ProtocolTrace(db.engine, tmp_path)
    response = client.post("/token", data=form)
    assert response.status_code == 200, response.json
    assert decode(response.json["access_token"])["access"][0]["actions"] == ["pull"]
    assert reads_by_round_trip(trace, ("refresh_tokens", "repositories")) == [
        {"refresh_tokens", "repositories"}]

"""The shipped migrations build exactly the schema the models describe, on SQLite and on
PostgreSQL, and running them again changes nothing."""

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

from authsvc.db.models import db
from authsvc.db.schema import (
    alembic_config,
    current_revision,
    empty_postgres_database,
    head_revision,
    upgrade,
)
from tests.conftest import TEST_DATABASE_URL

#: Reaches PostgreSQL itself: kept in the PostgreSQL run.
pytestmark = pytest.mark.database


def engines(tmp_path: Path) -> list[str]:
    """A SQLite file, and a PostgreSQL database named after the test database (so that runs
    on different test databases do not share it)."""
    urls = [f"sqlite:///{tmp_path}/migrated.db"]
    if TEST_DATABASE_URL:
        urls.append(f"{TEST_DATABASE_URL}_migrations")
    return urls


def empty_engine(tmp_path: Path, backend: str) -> Engine:
    """An engine on an empty database of ``backend``; skips without PostgreSQL."""
    urls = [u for u in engines(tmp_path) if u.startswith(backend)]
    if not urls:
        pytest.skip("set AUTHSVC_TEST_DATABASE_URL to run against PostgreSQL")
    if backend == "postgresql":
        empty_postgres_database(urls[0])
    return create_engine(urls[0])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_build_the_model_schema_and_are_idempotent(tmp_path: Path,
                                                              backend: str) -> None:
    engine = empty_engine(tmp_path, backend)
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert diff == []
    assert set(inspect(engine).get_table_names()) == {
        *db.metadata.tables, "alembic_version"}
    engine.dispose()


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def grant_rows(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(
            "SELECT username, target, actions FROM grants ORDER BY username, target"))]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_grants_move_from_user_ids_to_user_names_and_back(tmp_path: Path, backend: str) -> None:
    """0002 keeps every grant, now under its user's name; going back drops only grants to
    names without an account."""
    engine = empty_engine(tmp_path, backend)
    upgrade(engine, "0001")
    with engine.begin() as connection:
        for number, name in ((1, "alice"), (2, "john.smith")):
            connection.execute(text(
                "INSERT INTO users (id, username, admin, disabled, robot, created_at) "
                "VALUES (:id, :name, false, false, false, CURRENT_TIMESTAMP)"),
                {"id": number, "name": name})
        for user_id, target, actions in ((1, "john.smith/*", "pull"), (2, "alice/x", "*"),
                                         (2, "john.smith/y", "pull,push")):
            connection.execute(text(
                "INSERT INTO grants (user_id, target, actions, created_at) "
                "VALUES (:user_id, :target, :actions, CURRENT_TIMESTAMP)"),
                {"user_id": user_id, "target": target, "actions": actions})
    upgrade(engine)
    moved = [("alice", "john.smith/*", "pull"), ("john.smith", "alice/x", "*"),
             ("john.smith", "john.smith/y", "pull,push")]
    assert grant_rows(engine) == moved
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO grants (username, target, actions, created_at) "
            "VALUES ('nobody', 'alice/x', 'pull', CURRENT_TIMESTAMP)"))
    downgrade(engine, "0001")
    with engine.connect() as connection:
        back = [tuple(row) for row in connection.execute(text(
            "SELECT user_id, target FROM grants ORDER BY user_id, target"))]
    assert back == [(1, "john.smith/*"), (2, "alice/x"), (2, "john.smith/y")]
    upgrade(engine)
    assert grant_rows(engine) == moved
    engine.dispose()

"""The shipped migrations build exactly the schema the models describe, on SQLite and on
PostgreSQL, and running them again changes nothing."""

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from authsvc.database import current_revision, empty_postgres_database, head_revision, upgrade
from authsvc.models import db
from tests.conftest import TEST_DATABASE_URL


def engines(tmp_path: Path) -> list[str]:
    urls = [f"sqlite:///{tmp_path}/migrated.db"]
    if TEST_DATABASE_URL:
        urls.append(TEST_DATABASE_URL.rsplit("/", 1)[0] + "/authsvc_migrations")
    return urls


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_build_the_model_schema_and_are_idempotent(tmp_path: Path,
                                                              backend: str) -> None:
    urls = [u for u in engines(tmp_path) if u.startswith(backend)]
    if not urls:
        pytest.skip("set AUTHSVC_TEST_DATABASE_URL to run against PostgreSQL")
    url = urls[0]
    if backend == "postgresql":
        empty_postgres_database(url)
    engine = create_engine(url)
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert diff == []
    assert set(inspect(engine).get_table_names()) == {
        *db.metadata.tables, "alembic_version"}
    engine.dispose()

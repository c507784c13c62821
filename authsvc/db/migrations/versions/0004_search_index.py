"""an index for repository search: trigrams of the name on PostgreSQL

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 16:00:00.000000

Search (``GET /api/v1/repositories?q=``, ``GET /v1/search``) matches ``name LIKE '%q%'`` (or
``'q%'``), which no B-tree serves: with 100k repositories every search read the whole table
(``bench/run --search``). On PostgreSQL a GIN index with pg_trgm's ``gin_trgm_ops`` serves
both patterns (three characters or more). ``fastupdate`` is off: new names go straight into
the index, not into a pending list that every search reads until the next vacuum (100k names
inserted after the index was made cost each search 2.4 ms until then).

pg_trgm ships with PostgreSQL and is trusted since PostgreSQL 13 (a user with CREATE on the
database may add it; before 13, a superuser). Where it cannot be added, the index is a
``varchar_pattern_ops`` B-tree of the same name instead, which serves prefix matches only, and
the upgrade logs how to get the trigram index later. Downgrading leaves the extension (other
things may use it).

SQLite has no such index: search scans there (about 6 ms a statement at 100k repositories).
The index exists on SQLite as an empty partial index (``WHERE 0``: no rows, no cost) only so
that both databases have the schema the models describe.
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

log = logging.getLogger('authsvc.db.migrations')

INDEX = 'ix_repositories_name_trgm'


def _create_trigram_index(bind: sa.Connection) -> bool:
    """Add pg_trgm if missing and the GIN index, in a savepoint; returns False (having
    changed nothing) where the database refuses either."""
    try:
        with bind.begin_nested():
            bind.execute(sa.text('CREATE EXTENSION IF NOT EXISTS pg_trgm'))
            op.create_index(INDEX, 'repositories', ['name'], unique=False,
                            postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'},
                            postgresql_with={'fastupdate': 'off'})
    except sa.exc.DBAPIError as error:
        log.warning(
            "no trigram index for repository search (%s): search scans the repositories. "
            "To add it later, as a user who may (PostgreSQL 13+: CREATE on the database): "
            "CREATE EXTENSION pg_trgm; DROP INDEX %s; "
            "CREATE INDEX %s ON repositories USING gin (name gin_trgm_ops) "
            "WITH (fastupdate = off)",
            str(error.orig).strip().splitlines()[0], INDEX, INDEX)
        return False
    return True


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        op.create_index(INDEX, 'repositories', ['name'], unique=False,
                        sqlite_where=sa.text('0'))
    elif not _create_trigram_index(bind):
        op.create_index(INDEX, 'repositories', ['name'], unique=False,
                        postgresql_ops={'name': 'varchar_pattern_ops'})


def downgrade() -> None:
    op.drop_index(INDEX, table_name='repositories')

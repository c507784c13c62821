"""Database commands: ``db upgrade`` and ``db status``."""

import click

from authsvc.cli.base import cli, command
from authsvc.db.models import db
from authsvc.db.schema import current_revision, head_revision, upgrade


def redacted_url() -> str:
    return db.engine.url.render_as_string(hide_password=True)


@cli.group("db")
def db_group() -> None:
    """The database schema (Alembic migrations)."""


@command(db_group, "upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version. `init` and `serve` run it too."""
    before = current_revision(db.engine)
    upgrade(db.engine)
    after = current_revision(db.engine)
    if before == after:
        click.echo(f"database {redacted_url()} is up to date (revision {after})")
    else:
        click.echo(f"database {redacted_url()} upgraded from {before or 'empty'} to {after}")


@command(db_group, "status")
def db_status() -> None:
    """Show the schema revision of the database and the newest one this version knows."""
    click.echo(f"database {redacted_url()}: revision {current_revision(db.engine) or 'none'}, "
               f"newest {head_revision(db.engine)}")

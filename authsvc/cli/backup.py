"""Backup commands: ``backup FILE`` and ``restore FILE`` (the work is ``authsvc.db.backup``)."""

import textwrap
from pathlib import Path

import click
from flask import current_app

from authsvc.cli.base import app_state, cli, command
from authsvc.db.backup import PRIVATE, Site, Summary, backup, restore, sqlite_database


def current_site() -> Site:
    """This instance's database file, certificate folder and ``instance/config.py``; raises
    BackupError when the database is not a SQLite file (PostgreSQL: pg_dump)."""
    return Site(sqlite_database(current_app.config["SQLALCHEMY_DATABASE_URI"]),
                app_state().certs.root, Path(current_app.instance_path) / "config.py")


def echo_summary(summary: Summary) -> None:
    """The schema revision, the rows per table, and the files with their modes."""
    click.echo(f"database: schema revision {summary.revision}, integrity ok")
    counts = ", ".join(f"{name} {rows}" for name, rows in summary.tables.items())
    click.echo(textwrap.fill(counts, 88, initial_indent="  ", subsequent_indent="  "))
    secret = [m.name for m in summary.members if m.mode == PRIVATE]
    click.echo(f"files: {len(summary.members)} ({len(secret)} owner-only, 0600)")
    for member in summary.members:
        click.echo(f"  {member.mode:04o} {member.size:>9} {member.name}")
    for note in summary.notes:
        click.echo(f"note: {note}")


@command(cli, "backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE when it exists.")
def backup_command(file: Path, force: bool) -> None:
    """Save the SQLite database (a consistent copy, while authsvc serves), the certificate
    folder and instance/config.py into FILE (tar.gz, 0600). PostgreSQL: use pg_dump."""
    summary = backup(current_site(), file, force=force)
    click.echo(f"backup: wrote {summary.archive} (0600)")
    echo_summary(summary)


@command(cli, "restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def restore_command(file: Path) -> None:
    """Restore a backup FILE into a new instance (no database, empty certificate folder)."""
    site = current_site()
    summary = restore(site, file)
    click.echo(f"restore: {file} into {site.database} and {site.certs}")
    echo_summary(summary)

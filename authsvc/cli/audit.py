"""The ``authsvc audit`` command: read the audit trail."""

from datetime import datetime

import click

from authsvc.cli.base import app_state, cli, command
from authsvc.core.escaping import one_line
from authsvc.core.opaque_secrets import as_utc


@command(cli, "audit")
@click.option("--actor", default=None, help="Only events by this actor (user, cli:NAME).")
@click.option("--action", default=None, help="Only actions starting with this (token., user.).")
@click.option("--target", default=None, help="Only events about this target.")
@click.option("--since", type=click.DateTime(), default=None, help="Only events since (UTC).")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.option("--page", type=click.IntRange(1, 1_000_000), default=1, show_default=True)
def audit_command(actor: str | None, action: str | None, target: str | None,
                  since: datetime | None, limit: int, page: int) -> None:
    """Show the audit trail, newest first: tokens issued and refused, failed logins, changes."""
    rows, total = app_state().audit.search(
        actor=actor, action=action, target=target,
        since=as_utc(since) if since else None,
        offset=(page - 1) * limit, limit=limit)
    for row in rows:
        fields = [f"{row.at:%Y-%m-%dT%H:%M:%SZ}", row.action, row.actor or "-",
                  row.target or "-", row.remote_addr or "-"]
        extras = [f"{name}={value}" for name, value in (
            ("client_id", row.client_id), ("service", row.service),
            ("requested", row.requested), ("granted", row.granted)) if value]
        if row.detail:
            extras.append(row.detail)
        # a stored field may hold what a client sent: no line breaks or terminal escapes
        click.echo("\t".join(one_line(field) for field in [*fields, " ".join(extras)]))
    click.echo(f"({len(rows)} of {total} events)", err=True)

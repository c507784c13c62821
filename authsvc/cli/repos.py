"""Repository and grant commands."""

from collections.abc import Sequence
from datetime import datetime

import click

from authsvc.cli.base import app_state, cli, command
from authsvc.core.opaque_secrets import as_utc

# -- repositories and grants --------------------------------------------------------------

@cli.group("repo")
def repo_group() -> None:
    """Manage repositories and their visibility."""


@command(repo_group, "add")
@click.argument("name")
@click.option("--public/--private", default=None,
              help="Visibility. Default: the DEFAULT_VISIBILITY setting (private).")
def repo_add(name: str, public: bool | None) -> None:
    """Register repository NAME (for example alice/httpd)."""
    visibility = None if public is None else ("public" if public else "private")
    repo = app_state().repos.create(name, visibility)
    click.echo(f"added {repo.visibility} repository {repo.name}")


@command(repo_group, "visibility")
@click.argument("name")
@click.argument("visibility", type=click.Choice(["public", "private"]))
def repo_visibility(name: str, visibility: str) -> None:
    """Make repository NAME public (anyone may pull) or private."""
    app_state().repos.set_visibility(name, visibility)
    click.echo(f"{name} is now {visibility}")


def human_size(size: int) -> str:
    """``size`` bytes as people read them: 512 B, 3.1 MiB…"""
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def when(moment: datetime | None) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%SZ") if moment is not None else "-"


@command(repo_group, "list")
@click.option("--query", "-q", default="", help="Only names containing this text.")
@click.option("--sort", type=click.Choice(["name", "pushed"]), default="name",
              show_default=True, help="By name, or the last push first.")
def repo_list(query: str, sort: str) -> None:
    """List repositories: visibility, tags, size, last push and pulls."""
    state = app_state()
    repos = state.repos.search(None, query, sort=sort)[0]
    counts = state.catalog.tag_counts([r.id for r in repos])
    rows = [("NAME", "VISIBILITY", "TAGS", "SIZE", "LAST PUSH", "PULLS")]
    for repo in repos:
        tags, size = counts.get(repo.id, (0, 0))
        rows.append((repo.name, repo.visibility, str(tags), human_size(size),
                     when(repo.pushed_at), str(repo.pull_count)))
    echo_table(rows)


@command(repo_group, "show")
@click.argument("name")
def repo_show(name: str) -> None:
    """Show repository NAME: its description, visibility, pulls and tags."""
    state = app_state()
    repo = state.repos.get(name)
    click.echo(f"{repo.name} ({repo.visibility})")
    if repo.description:
        click.echo(repo.description)
    click.echo(f"last push: {when(repo.pushed_at)}   pulls: {repo.pull_count}   "
               f"last pull: {when(repo.last_pulled_at)}")
    tags = state.catalog.tags(name)
    if not tags:
        click.echo("no tags known (push one, or run `authsvc registry sync`)")
        return
    rows = [("TAG", "DIGEST", "SIZE", "PUSHED", "BY")]
    rows += [(t.tag, t.digest[:19], human_size(t.size), when(t.pushed_at), t.pushed_by or "-")
             for t in tags]
    echo_table(rows)


@command(repo_group, "description")
@click.argument("name")
@click.argument("text")
def repo_description(name: str, text: str) -> None:
    """Set the description of repository NAME (shown by `docker search`)."""
    app_state().repos.set_description(name, text)
    click.echo(f"set the description of {name}")


def echo_table(rows: Sequence[tuple[str, ...]]) -> None:
    """Rows in columns, the first one the heading."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                   .rstrip())


@command(cli, "grant")
@click.argument("user")
@click.argument("target")
@click.argument("actions")
def grant_command(user: str, target: str, actions: str) -> None:
    """Give the user name USER ACTIONS (pull,push,delete or *) on TARGET (ns/repo or ns/*).

    USER need not have an account yet; a user of that name created later holds the grant.
    """
    row = app_state().grants.grant(user, target, actions)
    click.echo(f"granted {','.join(row.actions)} on {row.target} to {row.username}")


@command(cli, "revoke")
@click.argument("user")
@click.argument("target")
def revoke_command(user: str, target: str) -> None:
    """Take away USER's grant on TARGET."""
    app_state().grants.revoke(user, target)
    click.echo(f"revoked the grant of {user} on {target}")


@command(cli, "grants")
@click.argument("target", required=False)
def grants_command(target: str | None) -> None:
    """List grants, optionally only those on TARGET."""
    for row in app_state().grants.list_grants(target):
        click.echo(f"{row.target}\t{row.username}\t{','.join(row.actions)}")

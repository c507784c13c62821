"""Repository and grant commands."""

import click

from authsvc.cli.base import app_state, cli, command

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


@command(repo_group, "list")
def repo_list() -> None:
    """List repositories with their visibility."""
    for repo in app_state().repos.search()[0]:
        click.echo(f"{repo.name}\t{repo.visibility}")


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

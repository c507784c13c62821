"""Refresh-token and access-token commands."""

import click

from authsvc.cli.base import app_state, cli, command

# -- refresh tokens -----------------------------------------------------------------------

@cli.group("refresh-token")
def refresh_token_group() -> None:
    """Refresh tokens: what `docker login` stores instead of the password."""


@command(refresh_token_group, "list")
@click.argument("user")
def refresh_token_list(user: str) -> None:
    """List USER's refresh tokens (never their secrets)."""
    app_state().accounts.get_user(user)
    click.echo("id\tservice\tclient_id\tcreated\texpires\tlast used")
    for row in app_state().refresh_tokens.list_for(user):
        used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
        click.echo(f"{row.id}\t{row.service}\t{row.client_id or '-'}\t"
                   f"{row.created_at:%Y-%m-%d %H:%M}\t{row.expires_at:%Y-%m-%d}\t{used}")


@command(refresh_token_group, "revoke")
@click.argument("token_id", metavar="ID", type=int)
def refresh_token_revoke(token_id: int) -> None:
    """Revoke refresh token ID: the client must log in again."""
    app_state().refresh_tokens.revoke(token_id)
    click.echo(f"revoked refresh token {token_id}")


# -- access tokens ------------------------------------------------------------------------

@cli.group("access-token")
def access_token_group() -> None:
    """Personal access tokens: revocable secrets accepted as the password (for CI)."""


@command(access_token_group, "create")
@click.argument("user")
@click.argument("name")
@click.option("--permission", type=click.Choice(["read", "write", "delete"]), required=True,
              help="read = pull; write = pull, push; delete = pull, push, delete.")
@click.option("--expires-in-days", type=int, default=None, help="Expiry; default: never.")
@click.option("--repository", "repositories", multiple=True, metavar="TARGET",
              help="Limit the token to a repository or namespace (ns/*); repeat for more.")
def access_token_create(user: str, name: str, permission: str, expires_in_days: int | None,
                        repositories: tuple[str, ...]) -> None:
    """Create access token NAME for USER and print its secret (shown this once)."""
    info, secret = app_state().access_tokens.create(
        user, name, permission, expires_in_days=expires_in_days, repositories=repositories)
    click.echo(f"created access token {info.id} for {user}; use it as the password:")
    click.echo(secret)


@command(access_token_group, "list")
@click.argument("user")
def access_token_list(user: str) -> None:
    """List USER's access tokens (never their secrets)."""
    app_state().accounts.get_user(user)
    click.echo("id\tname\tpermission\trepositories\texpires\tlast used")
    for t in app_state().access_tokens.list_for(user):
        expires = f"{t.expires_at:%Y-%m-%d}" if t.expires_at else "never"
        used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
        click.echo(f"{t.id}\t{t.name}\t{t.permission}\t{' '.join(t.repositories) or '*'}\t"
                   f"{expires}\t{used}")


@command(access_token_group, "revoke")
@click.argument("token_id", metavar="ID", type=int)
def access_token_revoke(token_id: int) -> None:
    """Revoke access token ID at once."""
    app_state().access_tokens.revoke(token_id)
    click.echo(f"revoked access token {token_id}")

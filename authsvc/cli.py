"""The ``authsvc`` command: a thin layer that parses arguments and calls the services."""

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import current_app
from flask.cli import ScriptInfo, with_appcontext

from authsvc import create_app
from authsvc.certs import bootstrap
from authsvc.errors import AuthsvcError
from authsvc.models import db
from authsvc.passwords import generate_password
from authsvc.registry_config import registry_config
from authsvc.state import State

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_HOSTS = ("localhost", "127.0.0.1")


def _state() -> State:
    return current_app.extensions["authsvc"]  # type: ignore[no-any-return]


def reports_errors(func: F) -> F:
    """Turn AuthsvcError into a one-line ``Error: …`` and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AuthsvcError as e:
            raise click.ClickException(e.message) from e

    return wrapper  # type: ignore[return-value]


def command(group: click.Group, name: str | None = None) -> Callable[[F], click.Command]:
    """Register ``func`` under ``group``, run in the app context, with errors reported."""

    def decorate(func: F) -> click.Command:
        return group.command(name)(with_appcontext(reports_errors(func)))

    return decorate


def read_password(from_stdin: bool) -> str:
    """One line from standard input, or an interactive prompt typed twice."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


cli = click.Group("authsvc",
                  help="authsvc: the token service for a self-hosted Docker registry.\n\n"
                      "Settings come from instance/config.py and AUTHSVC_* variables; "
                      "AUTHSVC_INSTANCE and AUTHSVC_CERTS_DIR move the instance and "
                      "certificate folders.")


# -- set-up -------------------------------------------------------------------------------

@command(cli, "init")
@click.option("--admin", "admin_name", default="admin", show_default=True,
              help="Name of the first admin.")
@click.option("--admin-password-stdin", is_flag=True,
              help="Read the admin password from standard input instead of generating one.")
def init_command(admin_name: str, admin_password_stdin: bool) -> None:
    """Everything a first run needs: certificates, database, an admin. Safe to run again."""
    state = _state()
    if state.certs.signing_key.exists():
        click.echo(f"certificates: kept the existing ones in {state.certs.root}")
    else:
        bootstrap(state.certs.root, DEFAULT_HOSTS)
        click.echo(f"certificates: created in {state.certs.root} for {', '.join(DEFAULT_HOSTS)}")
    db.create_all()
    click.echo(f"database: ready ({_redacted_url()})")
    if state.accounts.count_admins():
        click.echo("admin: an admin already exists; nothing changed")
        return
    password = read_password(True) if admin_password_stdin else generate_password()
    state.accounts.create_user(admin_name, password, admin=True)
    if admin_password_stdin:
        click.echo(f"admin: created {admin_name!r} with the password you gave")
    else:
        click.echo(f"admin: created {admin_name!r} with password {password}")
        click.echo("       (shown this once; change it with `authsvc user passwd`)")


def _redacted_url() -> str:
    return db.engine.url.render_as_string(hide_password=True)


@cli.group("certs")
def certs_group() -> None:
    """Certificates: the CA, HTTPS certificates and the token-signing key."""


@command(certs_group, "init")
@click.option("--host", "hosts", multiple=True, required=True,
              help="DNS name or IP address for the HTTPS certificates; repeat for more.")
@click.option("--force", is_flag=True, help="Replace existing certificates and keys.")
@click.option("--key-type", type=click.Choice(["ec", "rsa"]), default="ec", show_default=True,
              help="Token-signing key: EC P-256 (ES256) or RSA 2048 (RS256).")
def certs_init_command(hosts: tuple[str, ...], force: bool, key_type: str) -> None:
    """Create the CA, HTTPS certificates for authsvc and the registry, and the signing key."""
    state = _state()
    written = bootstrap(state.certs.root, hosts, force=force, key_type=key_type)  # type: ignore[arg-type]
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"\nClients (docker, podman, skopeo) trust: {state.certs.ca}")
    click.echo(f"The registry trusts token signatures from: {state.certs.bundle}")
    click.echo("Restart the registry and authsvc to use new certificates.")


@command(cli, "registry-config")
@click.option("--registry-addr", required=True, metavar="HOST:PORT",
              help="Address the registry listens on (http.addr).")
@click.option("--realm", default=None, metavar="URL",
              help="Token realm clients are sent to. Default: PUBLIC_URL + /token.")
@click.option("--storage-dir", default="/var/lib/docker-registry", show_default=True,
              type=click.Path(path_type=Path), help="Where the registry stores images.")
def registry_config_command(registry_addr: str, realm: str | None, storage_dir: Path) -> None:
    """Print a docker-registry config.yml that trusts this authsvc."""
    state = _state()
    click.echo(registry_config(
        addr=registry_addr, realm=realm or state.realm, service=state.config["SERVICES"][0],
        issuer=state.config["ISSUER"], certs=state.certs, storage_dir=storage_dir.resolve()),
        nl=False)


@command(cli, "serve")
@click.option("--host", default=None, help="Address to listen on. Default: HOST setting.")
@click.option("--port", type=int, default=None, help="Port to listen on. Default: PORT setting.")
@click.option("--workers", type=int, default=None, help="Worker processes.")
def serve_command(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve authsvc over HTTPS with the bootstrapped certificate."""
    from authsvc.server import serve

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    _state().load_issuer()  # fail now, not at the first token request, if the key is unusable
    db.create_all()
    db.engine.dispose()  # no connection may be shared with the forked workers
    host, port = host or config["HOST"], port or config["PORT"]
    click.echo(f"authsvc: serving https://{host}:{port} (realm {_state().realm})", err=True)
    serve(app, host, port, workers or config["WORKERS"], config["THREADS"])


# -- users --------------------------------------------------------------------------------

@cli.group("user")
def user_group() -> None:
    """Manage users."""


@command(user_group, "add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user an admin.")
@click.option("--robot", is_flag=True,
              help="A robot account: no password, it logs in with access tokens only.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_add(name: str, admin: bool, robot: bool, password_stdin: bool) -> None:
    """Add user NAME, who owns the namespace NAME/."""
    password = None if robot else read_password(password_stdin)
    _state().accounts.create_user(name, password, admin=admin, robot=robot)
    kind = "robot" if robot else "admin" if admin else "user"
    click.echo(f"added {kind} {name}")


@command(user_group, "passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_passwd(name: str, password_stdin: bool) -> None:
    """Set the password of user NAME."""
    _state().accounts.set_password(name, read_password(password_stdin))
    click.echo(f"password of {name} changed")


@command(user_group, "disable")
@click.argument("name")
def user_disable(name: str) -> None:
    """Disable user NAME: no login, no token grants anything."""
    _state().accounts.set_disabled(name, True)
    click.echo(f"disabled {name}")


@command(user_group, "enable")
@click.argument("name")
def user_enable(name: str) -> None:
    """Enable user NAME again."""
    _state().accounts.set_disabled(name, False)
    click.echo(f"enabled {name}")


@command(user_group, "list")
def user_list() -> None:
    """List users with their flags."""
    for user in _state().accounts.list_users():
        flags = [f for f, on in (("admin", user.admin), ("robot", user.robot),
                                 ("disabled", user.disabled)) if on]
        click.echo(f"{user.username}\t{','.join(flags) or '-'}")


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
    repo = _state().repos.create(name, visibility)
    click.echo(f"added {repo.visibility} repository {repo.name}")


@command(repo_group, "visibility")
@click.argument("name")
@click.argument("visibility", type=click.Choice(["public", "private"]))
def repo_visibility(name: str, visibility: str) -> None:
    """Make repository NAME public (anyone may pull) or private."""
    _state().repos.set_visibility(name, visibility)
    click.echo(f"{name} is now {visibility}")


@command(repo_group, "list")
def repo_list() -> None:
    """List repositories with their visibility."""
    for repo in _state().repos.search()[0]:
        click.echo(f"{repo.name}\t{repo.visibility}")


@command(cli, "grant")
@click.argument("user")
@click.argument("target")
@click.argument("actions")
def grant_command(user: str, target: str, actions: str) -> None:
    """Give USER ACTIONS (pull,push,delete or *) on TARGET (ns/repo or ns/*)."""
    row = _state().repos.grant(user, target, actions)
    click.echo(f"granted {','.join(row.actions)} on {row.target} to {row.username}")


@command(cli, "revoke")
@click.argument("user")
@click.argument("target")
def revoke_command(user: str, target: str) -> None:
    """Take away USER's grant on TARGET."""
    _state().repos.revoke(user, target)
    click.echo(f"revoked the grant of {user} on {target}")


@command(cli, "grants")
@click.argument("target", required=False)
def grants_command(target: str | None) -> None:
    """List grants, optionally only those on TARGET."""
    for row in _state().repos.list_grants(target):
        click.echo(f"{row.target}\t{row.username}\t{','.join(row.actions)}")


# -- refresh tokens -----------------------------------------------------------------------

@cli.group("refresh-token")
def refresh_token_group() -> None:
    """Refresh tokens: what `docker login` stores instead of the password."""


@command(refresh_token_group, "list")
@click.argument("user")
def refresh_token_list(user: str) -> None:
    """List USER's refresh tokens (never their secrets)."""
    _state().accounts.get_user(user)
    click.echo("id\tservice\tclient_id\tcreated\texpires\tlast used")
    for row in _state().refresh_tokens.list_for(user):
        used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
        click.echo(f"{row.id}\t{row.service}\t{row.client_id or '-'}\t"
                   f"{row.created_at:%Y-%m-%d %H:%M}\t{row.expires_at:%Y-%m-%d}\t{used}")


@command(refresh_token_group, "revoke")
@click.argument("token_id", metavar="ID", type=int)
def refresh_token_revoke(token_id: int) -> None:
    """Revoke refresh token ID: the client must log in again."""
    _state().refresh_tokens.revoke(token_id)
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
    info, secret = _state().access_tokens.create(
        user, name, permission, expires_in_days=expires_in_days, repositories=repositories)
    click.echo(f"created access token {info.id} for {user}; use it as the password:")
    click.echo(secret)


@command(access_token_group, "list")
@click.argument("user")
def access_token_list(user: str) -> None:
    """List USER's access tokens (never their secrets)."""
    _state().accounts.get_user(user)
    click.echo("id\tname\tpermission\trepositories\texpires\tlast used")
    for t in _state().access_tokens.list_for(user):
        expires = f"{t.expires_at:%Y-%m-%d}" if t.expires_at else "never"
        used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
        click.echo(f"{t.id}\t{t.name}\t{t.permission}\t{' '.join(t.repositories) or '*'}\t"
                   f"{expires}\t{used}")


@command(access_token_group, "revoke")
@click.argument("token_id", metavar="ID", type=int)
def access_token_revoke(token_id: int) -> None:
    """Revoke access token ID at once."""
    _state().access_tokens.revoke(token_id)
    click.echo(f"revoked access token {token_id}")


def main() -> None:
    info = ScriptInfo(create_app=lambda: create_app(), set_debug_flag=False,
                      load_dotenv_defaults=False)
    cli.main(prog_name="authsvc", obj=info)

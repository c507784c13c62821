"""Set-up commands: init and serve."""

from pathlib import Path

import click
from flask import current_app

from authsvc.cli.base import DEFAULT_HOSTS, app_state, cli, command, read_password
from authsvc.cli.db import redacted_url
from authsvc.core.passwords import generate_password
from authsvc.db.models import db
from authsvc.db.schema import upgrade
from authsvc.pki.certs import bootstrap
from authsvc.pki.notification_secret import ensure_secret
from authsvc.pki.web_secret import ensure_key, key_path

# -- set-up -------------------------------------------------------------------------------

@command(cli, "init")
@click.option("--admin", "admin_name", default="admin", show_default=True,
              help="Name of the first admin.")
@click.option("--admin-password-stdin", is_flag=True,
              help="Read the admin password from standard input instead of generating one.")
def init_command(admin_name: str, admin_password_stdin: bool) -> None:
    """Everything a first run needs: certificates, database, an admin. Safe to run again."""
    state = app_state()
    if state.certs.signing_key.exists():
        click.echo(f"certificates: kept the existing ones in {state.certs.root}")
    else:
        bootstrap(state.certs.root, DEFAULT_HOSTS, kid_format=state.config["KID_FORMAT"])
        click.echo(f"certificates: created in {state.certs.root} for {', '.join(DEFAULT_HOSTS)}")
    if ensure_secret(state.certs.notification_secret)[1]:
        click.echo(f"notification secret: created in {state.certs.notification_secret}")
    if ensure_key(key_path(state.certs.root))[1]:
        click.echo(f"web secret key: created in {key_path(state.certs.root)}")
    upgrade(db.engine)
    click.echo(f"database: ready ({redacted_url()})")
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


@command(cli, "serve")
@click.option("--host", default=None, help="Address to listen on. Default: HOST setting.")
@click.option("--port", type=int, default=None, help="Port to listen on. Default: PORT setting.")
@click.option("--workers", type=int, default=None, help="Worker processes.")
def serve_command(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve authsvc over HTTPS with the bootstrapped certificate."""
    from authsvc.server.serve import exec_serve

    config = current_app.config
    state = app_state()
    state.load_issuer()  # fail now, not at the first token request, if the key is unusable
    upgrade(db.engine)
    db.engine.dispose()  # no connection may be shared with the forked workers
    host, port = host or config["HOST"], port or config["PORT"]
    click.echo(f"authsvc: serving https://{host}:{port} (realm {state.realm})", err=True)
    exec_serve(Path(current_app.instance_path), state.certs.root, host, port,
               workers or config["WORKERS"], config["THREADS"])

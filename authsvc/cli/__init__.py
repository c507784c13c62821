"""The ``authsvc`` command: a thin layer that parses arguments and calls the services."""

import click
from flask import Flask
from flask.cli import ScriptInfo

from authsvc.app import create_app
from authsvc.cli import (  # noqa: F401 - commands
    audit,
    backup,
    certs,
    db,
    doctor,
    orgs,
    proxy,
    registry,
    repos,
    setup,
    tokens,
    users,
)
from authsvc.cli.base import cli
from authsvc.errors import ConfigError

__all__ = ["cli", "main"]


def configured_app() -> Flask:
    """The app, or a one-line ``Error: …`` (exit status 1) naming a bad setting."""
    try:
        return create_app()
    except ConfigError as e:
        raise click.ClickException(e.message) from e


def main() -> None:
    info = ScriptInfo(create_app=configured_app, set_debug_flag=False,
                      load_dotenv_defaults=False)
    cli.main(prog_name="authsvc", obj=info)

"""The ``authsvc`` command group and what its subcommands share. The commands live in
``setup``, ``users``, ``repos`` and ``tokens`` beside this module."""

import functools
import getpass
import sys
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click
from flask import current_app
from flask.cli import with_appcontext

from authsvc.db.audit import Origin, acting_as
from authsvc.db.services import Services, services_of
from authsvc.errors import AuthsvcError

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_HOSTS = ("localhost", "127.0.0.1")


def app_state() -> Services:
    return services_of(current_app)


def reports_errors(func: F) -> F:
    """Turn AuthsvcError into a one-line ``Error: …`` and exit status 1; attribute the audit
    events of the command to ``cli:<os user>``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with acting_as(Origin(actor=f"cli:{getpass.getuser()}")):
                return func(*args, **kwargs)
        except AuthsvcError as e:
            raise click.ClickException(e.message) from e

    return cast(F, wrapper)


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

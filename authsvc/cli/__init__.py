"""The ``authsvc`` command: a thin layer that parses arguments and calls the services."""

from flask.cli import ScriptInfo

from authsvc.app import create_app
from authsvc.cli import audit, certs, db, repos, setup, tokens, users  # noqa: F401 - commands
from authsvc.cli.base import cli

__all__ = ["cli", "main"]


def main() -> None:
    info = ScriptInfo(create_app=lambda: create_app(), set_debug_flag=False,
                      load_dotenv_defaults=False)
    cli.main(prog_name="authsvc", obj=info)

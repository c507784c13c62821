"""User commands."""

import click

from authsvc.cli.base import app_state, cli, command, read_password

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
    app_state().accounts.create_user(name, password, admin=admin, robot=robot)
    kind = "robot" if robot else "admin" if admin else "user"
    click.echo(f"added {kind} {name}")


@command(user_group, "passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_passwd(name: str, password_stdin: bool) -> None:
    """Set the password of user NAME."""
    app_state().accounts.set_password(name, read_password(password_stdin))
    click.echo(f"password of {name} changed")


@command(user_group, "disable")
@click.argument("name")
def user_disable(name: str) -> None:
    """Disable user NAME: no login, no token grants anything."""
    app_state().accounts.set_disabled(name, True)
    click.echo(f"disabled {name}")


@command(user_group, "enable")
@click.argument("name")
def user_enable(name: str) -> None:
    """Enable user NAME again."""
    app_state().accounts.set_disabled(name, False)
    click.echo(f"enabled {name}")


@command(user_group, "list")
def user_list() -> None:
    """List users with their flags."""
    for user in app_state().accounts.list_users():
        flags = [f for f, on in (("admin", user.admin), ("robot", user.robot),
                                 ("disabled", user.disabled)) if on]
        click.echo(f"{user.username}\t{','.join(flags) or '-'}")

"""The ``authsvc org`` and ``authsvc team`` groups: organisations (namespaces a group owns) and
their teams, thin over ``Organizations`` (``authsvc.db.organizations``).

The command line is the operator's, as ``authsvc user add`` is: no policy check; the service
validates and audits every change, with the ``cli:<os user>`` actor ``command`` sets."""

import click

from authsvc.cli.base import app_state, cli, command
from authsvc.core.escaping import one_line
from authsvc.db.organizations import OrgView, TeamView

# -- organisations ------------------------------------------------------------------------

@cli.group("org")
def org_group() -> None:
    """Manage organisations: namespaces (acme/…) owned by a group of users."""


def team_lines(team: TeamView) -> list[str]:
    """A team as ``org show`` prints it: its name and description, members, permissions."""
    heading = f"team {team.name}"
    if team.description:
        # set through the API by an owner: no line breaks or terminal escapes
        heading += f": {one_line(team.description)}"
    permissions = ", ".join(f"{target} {permission}" for target, permission in team.permissions)
    return [heading, f"  members: {', '.join(team.members) or '-'}",
            f"  permissions: {permissions or '-'}"]


def org_lines(org: OrgView) -> list[str]:
    """What ``org show`` prints below the organisation's name."""
    lines = [f"owners: {', '.join(org.owners) or '-'}", f"repositories: {org.repositories}"]
    if not org.teams:
        return [*lines, "teams: -"]
    return lines + [line for team in org.teams for line in team_lines(team)]


@command(org_group, "create")
@click.argument("name")
@click.option("--owner", "owners", multiple=True, metavar="USER",
              help="A user name who manages the organisation (repeat it).")
def org_create(name: str, owners: tuple[str, ...]) -> None:
    """Create the organisation NAME, owner of the namespace NAME/. Users and organisations
    share one space of names."""
    org = app_state().orgs.create(name, owners)
    click.echo(f"created organisation {org.name}")
    for line in org_lines(org):
        click.echo(line)


@command(org_group, "list")
def org_list() -> None:
    """List the organisations, one name per line."""
    for name in app_state().orgs.names():
        click.echo(name)


@command(org_group, "show")
@click.argument("name")
def org_show(name: str) -> None:
    """Show organisation NAME: owners, each team with its members and permissions, and how
    many repositories it holds."""
    org = app_state().orgs.view(name)
    click.echo(f"organisation {org.name}")
    for line in org_lines(org):
        click.echo(line)


@command(org_group, "delete")
@click.argument("name")
@click.option("--force", is_flag=True,
              help="Also forget the records and grants of its repositories (the images stay "
                   "in the registry).")
def org_delete(name: str, force: bool) -> None:
    """Delete organisation NAME with its teams. Refused while it holds repositories, unless
    --force."""
    forgotten = app_state().orgs.delete(name, force=force)
    click.echo(f"deleted organisation {name}")
    if force:
        records = "repository record and its" if forgotten == 1 else "repository records and their"
        click.echo(f"forgot {forgotten} {records} grants (the images stay in the registry)")


@command(org_group, "add-owner")
@click.argument("name")
@click.argument("user")
def org_add_owner(name: str, user: str) -> None:
    """Make the user name USER an owner of organisation NAME."""
    app_state().orgs.add_owner(name, user)
    click.echo(f"{user} owns {name}")


@command(org_group, "remove-owner")
@click.argument("name")
@click.argument("user")
def org_remove_owner(name: str, user: str) -> None:
    """Take USER off the owners of organisation NAME (not the last one)."""
    app_state().orgs.remove_owner(name, user)
    click.echo(f"{user} no longer owns {name}")


# -- teams --------------------------------------------------------------------------------

@cli.group("team")
def team_group() -> None:
    """Manage the teams of organisations: members and their permissions."""


@command(team_group, "create")
@click.argument("org")
@click.argument("team")
@click.option("--description", default="", help="What the team is for.")
def team_create(org: str, team: str, description: str) -> None:
    """Create TEAM in organisation ORG."""
    app_state().orgs.create_team(org, team, description)
    click.echo(f"created team {team} in {org}")


@command(team_group, "delete")
@click.argument("org")
@click.argument("team")
def team_delete(org: str, team: str) -> None:
    """Delete TEAM of organisation ORG with its members and permissions."""
    app_state().orgs.delete_team(org, team)
    click.echo(f"deleted team {team} of {org}")


@command(team_group, "add-member")
@click.argument("org")
@click.argument("team")
@click.argument("user")
def team_add_member(org: str, team: str, user: str) -> None:
    """Add the user name USER (a robot too) to TEAM of ORG."""
    app_state().orgs.add_member(org, team, user)
    click.echo(f"added {user} to the team {team} of {org}")


@command(team_group, "remove-member")
@click.argument("org")
@click.argument("team")
@click.argument("user")
def team_remove_member(org: str, team: str, user: str) -> None:
    """Take USER out of TEAM of ORG: from the next token request on."""
    app_state().orgs.remove_member(org, team, user)
    click.echo(f"removed {user} from the team {team} of {org}")


@command(team_group, "grant")
@click.argument("org")
@click.argument("team")
@click.argument("target")
@click.argument("permission", metavar="read|write|admin")
def team_grant(org: str, team: str, target: str, permission: str) -> None:
    """Give TEAM of ORG a permission on TARGET (ORG/* or ORG/REPO), replacing the one it had
    there: read (pull), write (pull, push) or admin (pull, push, delete, and manage the
    repositories)."""
    # the service checks the permission (one ``Error:`` line and status 1, as every error)
    app_state().orgs.set_permission(org, team, target, permission)
    click.echo(f"granted {permission} on {target} to the team {team} of {org}")


@command(team_group, "revoke")
@click.argument("org")
@click.argument("team")
@click.argument("target")
def team_revoke(org: str, team: str, target: str) -> None:
    """Take away the permission of TEAM of ORG on TARGET: from the next token request on."""
    app_state().orgs.remove_permission(org, team, target)
    click.echo(f"revoked the permission of the team {team} of {org} on {target}")

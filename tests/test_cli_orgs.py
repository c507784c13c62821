"""``authsvc org …`` and ``authsvc team …``: output, effect read back through the service,
errors, audit, and what the member's next token holds."""

import getpass
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient, FlaskCliRunner

from authsvc.cli import cli
from authsvc.db.services import Services
from tests.conftest import PASSWORD
from tests.token_helpers import Decode, access_of, get_token

CLI_ACTOR = f"cli:{getpass.getuser()}"


def run(runner: FlaskCliRunner, *args: str, input: str | None = None) -> tuple[int, str]:
    result = runner.invoke(cli, list(args), input=input)
    return result.exit_code, result.output


def ok(runner: FlaskCliRunner, *args: str) -> str:
    code, output = run(runner, *args)
    assert code == 0, output
    return output


def test_every_org_and_team_command_has_help(runner: FlaskCliRunner) -> None:
    for words in (["org"], ["org", "create"], ["org", "list"], ["org", "show"],
                  ["org", "delete"], ["org", "add-owner"], ["org", "remove-owner"], ["team"],
                  ["team", "create"], ["team", "delete"], ["team", "add-member"],
                  ["team", "remove-member"], ["team", "grant"], ["team", "revoke"]):
        code, output = run(runner, *words, "--help")
        assert code == 0, words
        assert "Usage:" in output


def test_create_list_show_and_owners(runner: FlaskCliRunner, state: Services) -> None:
    assert ok(runner, "org", "create", "acme", "--owner", "alice", "--owner", "carol") == (
        "created organisation acme\n"
        "owners: alice, carol\n"
        "repositories: 0\n"
        "teams: -\n")
    assert ok(runner, "org", "create", "zeta") == (
        "created organisation zeta\nowners: -\nrepositories: 0\nteams: -\n")
    assert state.orgs.view("acme").owners == ("alice", "carol")
    assert ok(runner, "org", "list") == "acme\nzeta\n"

    assert ok(runner, "org", "add-owner", "acme", "dave") == "dave owns acme\n"
    assert ok(runner, "org", "remove-owner", "acme", "alice") == "alice no longer owns acme\n"
    assert state.orgs.view("acme").owners == ("carol", "dave")

    state.repos.create("acme/app")
    state.repos.create("acme/web")
    state.repos.create("acmeish/app")  # another namespace: not counted
    ok(runner, "team", "create", "acme", "developers", "--description", "Everyone who codes")
    ok(runner, "team", "create", "acme", "ci")
    ok(runner, "team", "add-member", "acme", "developers", "bob")
    ok(runner, "team", "add-member", "acme", "developers", "alice")
    ok(runner, "team", "grant", "acme", "developers", "acme/*", "write")
    ok(runner, "team", "grant", "acme", "developers", "acme/web", "admin")
    assert ok(runner, "org", "show", "acme") == (
        "organisation acme\n"
        "owners: carol, dave\n"
        "repositories: 2\n"
        "team ci\n"
        "  members: -\n"
        "  permissions: -\n"
        "team developers: Everyone who codes\n"
        "  members: alice, bob\n"
        "  permissions: acme/* write, acme/web admin\n")


def test_team_commands_change_what_the_service_holds(runner: FlaskCliRunner,
                                                     state: Services) -> None:
    ok(runner, "org", "create", "acme", "--owner", "alice")
    assert ok(runner, "team", "create", "acme", "developers", "--description", "Devs") == (
        "created team developers in acme\n")
    assert ok(runner, "team", "add-member", "acme", "developers", "bob") == (
        "added bob to the team developers of acme\n")
    assert ok(runner, "team", "grant", "acme", "developers", "acme/*", "read") == (
        "granted read on acme/* to the team developers of acme\n")
    assert ok(runner, "team", "grant", "acme", "developers", "acme/app", "admin") == (
        "granted admin on acme/app to the team developers of acme\n")
    # granting again on the same target replaces the permission
    ok(runner, "team", "grant", "acme", "developers", "acme/*", "write")
    team = state.orgs.team("acme", "developers")
    assert (team.description, team.members) == ("Devs", ("bob",))
    assert team.permissions == (("acme/*", "write"), ("acme/app", "admin"))

    assert ok(runner, "team", "revoke", "acme", "developers", "acme/app") == (
        "revoked the permission of the team developers of acme on acme/app\n")
    assert ok(runner, "team", "remove-member", "acme", "developers", "bob") == (
        "removed bob from the team developers of acme\n")
    team = state.orgs.team("acme", "developers")
    assert (team.members, team.permissions) == ((), (("acme/*", "write"),))

    assert ok(runner, "team", "delete", "acme", "developers") == (
        "deleted team developers of acme\n")
    assert state.orgs.view("acme").teams == ()


def snapshot(runner: FlaskCliRunner, state: Services) -> tuple[object, ...]:
    """What an error must leave as it was: organisations, teams, users, grants, audit."""
    orgs = tuple(state.orgs.view(name) for name in state.orgs.names())
    users = run(runner, "user", "list")[1]
    return orgs, users, run(runner, "grants")[1], state.audit.search(limit=None)[1]


@pytest.mark.parametrize(("args", "message"), [
    (["org", "show", "ghost"], "organisation 'ghost' does not exist"),
    (["org", "delete", "ghost"], "organisation 'ghost' does not exist"),
    (["org", "add-owner", "ghost", "bob"], "organisation 'ghost' does not exist"),
    (["team", "create", "ghost", "devs"], "organisation 'ghost' does not exist"),
    (["team", "grant", "ghost", "devs", "ghost/*", "read"], "organisation 'ghost' does not"),
    (["team", "add-member", "acme", "ghost", "bob"], "team 'ghost' does not exist in 'acme'"),
    (["team", "remove-member", "acme", "ghost", "bob"], "team 'ghost' does not exist"),
    (["team", "grant", "acme", "ghost", "acme/*", "read"], "team 'ghost' does not exist"),
    (["team", "revoke", "acme", "ghost", "acme/*"], "team 'ghost' does not exist"),
    (["team", "delete", "acme", "ghost"], "team 'ghost' does not exist"),
    (["org", "create", "alice"], "the name 'alice' is taken by a user or an organisation"),
    (["org", "create", "acme"], "the name 'acme' is taken by a user or an organisation"),
    (["user", "add", "acme", "--robot"], "the name 'acme' is taken by an organisation"),
    (["org", "create", "Acme"], "invalid organisation name"),
    (["org", "create", "beta", "--owner", "Bob"], "invalid user name"),
    (["team", "create", "acme", "devs"], "the team 'devs' already exists in 'acme'"),
    (["team", "create", "acme", "Dev Ops"], "invalid team name"),
    (["team", "grant", "acme", "devs", "acme/*", "fly"],
     "unknown permission 'fly': use read, write or admin"),
    (["team", "grant", "acme", "devs", "acme/*", "pull"], "unknown permission 'pull'"),
    (["team", "grant", "acme", "devs", "alice/app", "read"],
     "'alice/app' is not in the organisation 'acme'"),
    (["team", "grant", "acme", "devs", "alice/*", "read"], "'alice/*'"),
    (["team", "grant", "acme", "devs", "acme/Bad", "read"], "invalid repository name"),
    (["team", "revoke", "acme", "devs", "acme/app"], "has no permission on 'acme/app'"),
    (["team", "remove-member", "acme", "devs", "carol"], "'carol' is not in the team 'devs'"),
    (["org", "remove-owner", "acme", "carol"], "'carol' is not an owner of 'acme'"),
    (["org", "remove-owner", "acme", "alice"], "'alice' is the last owner of 'acme'"),
])
def test_errors_are_one_line_and_change_nothing(runner: FlaskCliRunner, state: Services,
                                                args: list[str], message: str) -> None:
    state.accounts.create_user("alice", "alice-pass")
    state.orgs.create("acme", ["alice"])
    state.orgs.create_team("acme", "devs")
    state.orgs.add_member("acme", "devs", "bob")
    before = snapshot(runner, state)
    code, output = run(runner, *args)
    assert code == 1, output
    assert output.startswith("Error: ") and output.count("\n") == 1, output
    assert message in output
    assert snapshot(runner, state) == before


def test_a_user_and_an_organisation_never_share_a_name(runner: FlaskCliRunner,
                                                       state: Services) -> None:
    ok(runner, "org", "create", "acme")
    code, output = run(runner, "user", "add", "acme", "--password-stdin",
                       input="a long password\n")
    assert (code, output) == (1, "Error: the name 'acme' is taken by an organisation\n")
    assert "acme" not in run(runner, "user", "list")[1]
    ok(runner, "user", "add", "bob", "--robot")
    assert run(runner, "org", "create", "bob")[0] == 1
    assert state.orgs.names() == ["acme"]


def test_delete_is_refused_while_it_holds_repositories_then_forced(
        runner: FlaskCliRunner, state: Services) -> None:
    ok(runner, "org", "create", "acme", "--owner", "alice")
    ok(runner, "team", "create", "acme", "devs")
    state.repos.create("acme/app")
    state.repos.create("acme/web")
    state.grants.grant("bob", "acme/app", "pull")
    code, output = run(runner, "org", "delete", "acme")
    assert code == 1
    assert output.startswith("Error: the organisation 'acme' holds 2 repositories: ")
    assert "the images stay in the registry" in output and output.count("\n") == 1
    assert state.orgs.exists("acme") and state.repos.find("acme/app") is not None

    assert ok(runner, "org", "delete", "acme", "--force") == (
        "deleted organisation acme\n"
        "forgot 2 repository records and their grants (the images stay in the registry)\n")
    assert not state.orgs.exists("acme")
    assert state.repos.find("acme/app") is None and state.repos.find("acme/web") is None
    assert state.grants.list_grants() == []
    # the name is free again, and the new organisation inherits nothing
    ok(runner, "org", "create", "acme")
    assert state.orgs.view("acme").teams == ()


def test_delete_without_repositories_needs_no_force(runner: FlaskCliRunner,
                                                    state: Services) -> None:
    ok(runner, "org", "create", "acme")
    assert ok(runner, "org", "delete", "acme") == "deleted organisation acme\n"
    assert ok(runner, "org", "list") == ""
    ok(runner, "org", "create", "beta")
    assert ok(runner, "org", "delete", "beta", "--force") == (
        "deleted organisation beta\n"
        "forgot 0 repository records and their grants (the images stay in the registry)\n")
    ok(runner, "org", "create", "gamma")
    state.repos.create("gamma/app")
    assert ok(runner, "org", "delete", "gamma", "--force") == (
        "deleted organisation gamma\n"
        "forgot 1 repository record and its grants (the images stay in the registry)\n")


def test_every_change_is_audited_with_the_cli_actor(runner: FlaskCliRunner,
                                                    state: Services) -> None:
    commands = [
        ("org", "create", "acme", "--owner", "alice"),
        ("org", "add-owner", "acme", "carol"),
        ("org", "remove-owner", "acme", "carol"),
        ("team", "create", "acme", "devs"),
        ("team", "add-member", "acme", "devs", "bob"),
        ("team", "grant", "acme", "devs", "acme/*", "write"),
        ("team", "revoke", "acme", "devs", "acme/*"),
        ("team", "remove-member", "acme", "devs", "bob"),
        ("team", "delete", "acme", "devs"),
        ("org", "delete", "acme"),
    ]
    for words in commands:
        ok(runner, *words)
    rows = [row for row in reversed(state.audit.search(limit=None)[0])
            if row.action.startswith(("org.", "team."))]
    assert {row.actor for row in rows} == {CLI_ACTOR}
    assert [(row.action, row.target, row.detail) for row in rows] == [
        ("org.created", "acme", "owner=alice"),
        ("org.owner_added", "acme", "user=carol"),
        ("org.owner_removed", "acme", "user=carol"),
        ("team.created", "acme/devs", ""),
        ("team.member_added", "acme/devs", "user=bob"),
        ("team.permission_set", "acme/devs", "acme/* write"),
        ("team.permission_removed", "acme/devs", "acme/*"),
        ("team.member_removed", "acme/devs", "user=bob"),
        ("team.deleted", "acme/devs", ""),
        ("org.deleted", "acme", "repositories=0"),
    ]


PUSH_SCOPE = "repository:acme/app:pull,push"


def test_membership_and_permission_count_from_the_next_token(
        runner: FlaskCliRunner, client: FlaskClient, decode: Decode,
        make_user: Callable[..., str]) -> None:
    make_user("bob")
    ok(runner, "org", "create", "acme", "--owner", "alice")

    def bobs_access() -> list[str]:
        response = get_token(client, PUSH_SCOPE, auth=("bob", PASSWORD))
        return sorted(access_of(decode, response)["repository:acme/app"])

    ok(runner, "team", "create", "acme", "developers")
    ok(runner, "team", "grant", "acme", "developers", "acme/*", "write")
    assert bobs_access() == []
    ok(runner, "team", "add-member", "acme", "developers", "bob")
    assert bobs_access() == ["pull", "push"]
    ok(runner, "team", "grant", "acme", "developers", "acme/*", "read")
    assert bobs_access() == ["pull"]
    ok(runner, "team", "grant", "acme", "developers", "acme/*", "write")
    ok(runner, "team", "remove-member", "acme", "developers", "bob")
    assert bobs_access() == []
    ok(runner, "team", "add-member", "acme", "developers", "bob")
    ok(runner, "team", "revoke", "acme", "developers", "acme/*")
    assert bobs_access() == []


def test_the_readme_example_a_robot_in_a_team_pushes_one_repository(
        runner: FlaskCliRunner, client: FlaskClient, decode: Decode) -> None:
    """The worked example of the README: the ci team writes acme/app, its robot's token too."""
    ok(runner, "org", "create", "acme", "--owner", "alice")
    ok(runner, "team", "create", "acme", "ci", "--description", "Builds and pushes acme/app")
    ok(runner, "team", "grant", "acme", "ci", "acme/app", "write")
    ok(runner, "user", "add", "acme-ci", "--robot")
    ok(runner, "team", "add-member", "acme", "ci", "acme-ci")
    secret = ok(runner, "access-token", "create", "acme-ci", "deploy", "--permission", "write",
                "--repository", "acme/app", "--expires-in-days", "90").splitlines()[-1]
    response = get_token(client, PUSH_SCOPE, "repository:acme/web:pull,push",
                         auth=("acme-ci", secret))
    access = access_of(decode, response)
    assert sorted(access["repository:acme/app"]) == ["pull", "push"]
    assert access["repository:acme/web"] == []

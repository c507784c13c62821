"""Deletes that reach into the registry, through the API (``DELETE /repositories/{name}``,
``DELETE /repositories/{name}/-/tags/{tag}``) and the CLI (``repo delete``, ``tag delete``,
``registry sync``), without a registry: who may ask, what needs REGISTRY_URL (503), and an
unreachable registry (502, a closed port: nothing is mocked). What a real registry does with
them is in ``tests/e2e/test_registry_sync.py``.
"""

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

import authsvc.web.api.registry_deletes  # noqa: F401 - the routes (also imported by the app)
from authsvc.cli import cli
from authsvc.db.services import Services, services_of
from tests.api_helpers import ALICE, BOB, ROOT, Who, call, error_of, new_token
from tests.api_helpers import snapshot as api_snapshot
from tests.e2e.processes import free_port

DIGEST = "sha256:" + "a" * 64
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
#: A registry URL where nothing listens: every request is refused at once.
CLOSED = f"https://127.0.0.1:{free_port()}"


def snapshot(app: Flask) -> dict[str, Any]:
    """Everything the API can change, and the tag records."""
    with app.app_context():
        tags = services_of(app).catalog.all_tags()
    return {**api_snapshot(app), "tags": tags}


@pytest.fixture
def people(make_user: Any) -> None:
    make_user("root", admin=True)
    make_user("alice")
    make_user("bob")
    make_user("carol")


@pytest.fixture
def httpd(app: Flask, people: None) -> str:
    """alice/httpd, private: bob may pull it, carol may pull and delete."""
    with app.app_context():
        s: Services = services_of(app)
        s.repos.create("alice/httpd", "private")
        s.grants.grant("bob", "alice/httpd", "pull")
        s.grants.grant("carol", "alice/httpd", "pull,delete")
    return "alice/httpd"


@pytest.fixture
def tagged(app: Flask, httpd: str) -> str:
    """alice/httpd with the tag v1 recorded (authsvc knows images of it)."""
    with app.app_context():
        services_of(app).catalog.put_tag(httpd, "v1", DIGEST, MANIFEST, 100)
    return httpd


def who_is(client: FlaskClient, who: Who | str) -> Who:
    """``read``/``write``/``delete``: a token of alice's; ``admin token``: root's delete token;
    ``carol``: carol's password."""
    if who in ("read", "write", "delete"):
        return new_token(client, "alice", permission=str(who))
    if who == "admin token":
        return new_token(client, "root", permission="delete")
    if who == "carol":
        return ("carol", ALICE[1])
    return who


TAG = "/repositories/alice/httpd/-/tags/v1"
REPO = "/repositories/alice/httpd"


# -- who may ask -----------------------------------------------------------------------------

@pytest.mark.parametrize(("who", "path", "status", "code"), [
    pytest.param(BOB, TAG, 403, "DENIED", id="tag: pull grant only"),
    pytest.param("read", TAG, 403, "DENIED", id="tag: read token"),
    pytest.param("write", TAG, 403, "DENIED", id="tag: write token"),
    pytest.param(("mallory", ALICE[1]), TAG, 401, "UNAUTHORIZED", id="tag: no such user"),
    pytest.param(BOB, REPO, 403, "DENIED", id="repository: pull grant only"),
    pytest.param("write", REPO, 403, "DENIED", id="repository: write token"),
    pytest.param(BOB, "/repositories/alice/secret/-/tags/v1", 404, "NOT_FOUND",
                 id="tag: may not even pull"),
    pytest.param(BOB, "/repositories/alice/secret", 404, "NOT_FOUND",
                 id="repository: may not even pull"),
    pytest.param(ALICE, "/repositories/alice/Bad/-/tags/v1", 422, "NAME_INVALID",
                 id="tag: bad name"),
    pytest.param(ALICE, "/repositories/alice/httpd/-/tags/.v1", 422, "NAME_INVALID",
                 id="tag: bad tag"),
    pytest.param(ALICE, TAG + "?with_shared_tags=maybe", 422, "INVALID_REQUEST",
                 id="tag: bad flag"),
])
def test_refused_deletes_change_nothing(app: Flask, client: FlaskClient, tagged: str,
                                        who: Who, path: str, status: int, code: str) -> None:
    with app.app_context():
        services_of(app).repos.create("alice/secret", "private")
    who = who_is(client, who)
    before = snapshot(app)
    error_of(call(client, "DELETE", path, who), status, code)
    assert snapshot(app) == before


# -- without REGISTRY_URL --------------------------------------------------------------------

@pytest.mark.parametrize(("who", "path"), [
    pytest.param(ALICE, TAG, id="tag: owner"),
    pytest.param("delete", TAG, id="tag: delete token"),
    pytest.param("carol", TAG, id="tag: delete grant"),
    pytest.param(ALICE, REPO, id="repository with tags: owner"),
    pytest.param(ROOT, REPO, id="repository with tags: admin"),
    pytest.param("carol", REPO, id="repository: delete grant"),
    pytest.param("admin token", REPO, id="repository: admin's delete token"),
])
def test_what_needs_the_registry_is_503_without_registry_url(
        app: Flask, client: FlaskClient, tagged: str, who: Who, path: str) -> None:
    who = who_is(client, who)
    before = snapshot(app)
    response = call(client, "DELETE", path, who)
    assert "REGISTRY_URL" in error_of(response, 503)
    assert snapshot(app) == before


def test_a_repository_without_known_tags_is_forgotten_as_before(
        app: Flask, client: FlaskClient, httpd: str) -> None:
    response = call(client, "DELETE", REPO, ALICE)
    assert response.status_code == 204 and response.get_data() == b""
    after = snapshot(app)
    assert after["repositories"] == [] and after["grants"] == []
    error_of(call(client, "DELETE", REPO, ALICE), 404, "NOT_FOUND")
    with app.app_context():
        events, _ = services_of(app).audit.search(action="repository.deleted")
        assert [(e.actor, e.target) for e in events] == [("alice", "alice/httpd")]


def test_a_delete_grant_does_not_forget_the_record(app: Flask, client: FlaskClient,
                                                   httpd: str) -> None:
    """Without a registry a delete-grant holder has nothing it may delete: the record is the
    owner's."""
    before = snapshot(app)
    error_of(call(client, "DELETE", REPO, who_is(client, "carol")), 503)
    assert snapshot(app) == before


# -- an unreachable registry -----------------------------------------------------------------

@pytest.mark.app_config(REGISTRY_URL=CLOSED)
@pytest.mark.parametrize("path", [TAG, TAG + "?with_shared_tags=true", REPO])
def test_an_unreachable_registry_is_502_and_nothing_changes(
        app: Flask, client: FlaskClient, tagged: str, path: str) -> None:
    before = snapshot(app)
    message = error_of(call(client, "DELETE", path, ALICE), 502, "REGISTRY_UNAVAILABLE")
    assert CLOSED in message and "\n" not in message
    assert snapshot(app) == before


# -- the CLI ---------------------------------------------------------------------------------

def test_cli_repo_delete_forgets_a_repository_without_known_tags(
        app: Flask, runner: FlaskCliRunner, httpd: str) -> None:
    result = runner.invoke(cli, ["repo", "delete", "alice/httpd"], input="n\n")
    assert result.exit_code == 1 and "Aborted" in result.output
    assert snapshot(app)["repositories"] == [("alice/httpd", "private")]
    result = runner.invoke(cli, ["repo", "delete", "alice/httpd", "--yes"])
    assert result.exit_code == 0, result.output
    assert result.output == "forgot the repository alice/httpd and its grants\n"
    assert snapshot(app)["repositories"] == []
    result = runner.invoke(cli, ["repo", "delete", "alice/httpd", "--yes"])
    assert (result.exit_code, result.output) == (
        1, "Error: repository 'alice/httpd' does not exist\n")


@pytest.mark.parametrize("args", [
    pytest.param(["repo", "delete", "alice/httpd", "--yes"], id="repo delete"),
    pytest.param(["tag", "delete", "alice/httpd:v1", "--yes"], id="tag delete"),
    pytest.param(["registry", "sync"], id="sync"),
])
def test_cli_without_registry_url_is_one_error_line(app: Flask, runner: FlaskCliRunner,
                                                    tagged: str, args: list[str]) -> None:
    before = snapshot(app)
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "REGISTRY_URL" in result.output
    assert snapshot(app) == before


@pytest.mark.app_config(REGISTRY_URL=CLOSED)
@pytest.mark.parametrize("args", [
    pytest.param(["repo", "delete", "alice/httpd", "--yes"], id="repo delete"),
    pytest.param(["tag", "delete", "alice/httpd:v1", "--yes"], id="tag delete"),
    pytest.param(["registry", "sync"], id="sync"),
])
def test_cli_with_an_unreachable_registry_is_one_error_line(
        app: Flask, runner: FlaskCliRunner, tagged: str, args: list[str]) -> None:
    before = snapshot(app)
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert CLOSED in result.output
    assert snapshot(app) == before


@pytest.mark.parametrize(("reference", "message"), [
    ("alice/httpd", "expected NAME:TAG"),
    ("alice/httpd:", "expected NAME:TAG"),
    ("alice/httpd:.v1", "invalid tag"),
])
def test_cli_tag_delete_wants_name_and_tag(runner: FlaskCliRunner, people: None,
                                           reference: str, message: str) -> None:
    result = runner.invoke(cli, ["tag", "delete", reference, "--yes"])
    assert result.exit_code == 1 and message in result.output, result.output

"""The organisation pages (``/ui/orgs``, ``/ui/orgs/ORG``): owners and admins manage owners,
teams, members and permissions there with the service's rules; a team member sees the page
and the organisation's repositories but changes nothing (403); anyone else gets the 404 of an
organisation that does not exist; a refused form changes nothing and says which field is
wrong; every POST needs its CSRF token."""

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.db.organizations import OrgView
from authsvc.db.services import services_of
from tests.test_pages import get, post, push, sign_in
from tests.test_pages_account import https_client

ORG = "/ui/orgs/acme"


@pytest.fixture
def people(app: Flask, make_user: Callable[..., str]) -> None:
    """root (admin), alice (owner of acme), bob (in team devs: write on acme/*), carol (in
    no team), and the team devs."""
    for name in ("alice", "bob", "carol"):
        make_user(name)
    make_user("root", admin=True)
    with app.app_context():
        orgs = services_of(app).orgs
        orgs.create("acme", ["alice"])
        orgs.create_team("acme", "devs", "the people who push")
        orgs.add_member("acme", "devs", "bob")
        orgs.set_permission("acme", "devs", "acme/*", "write")


def view(app: Flask) -> OrgView:
    with app.app_context():
        orgs = services_of(app).orgs
        orgs.session.expire_all()
        return orgs.view("acme")


def as_user(app: Flask, name: str) -> FlaskClient:
    client = https_client(app)
    assert sign_in(client, name).status_code == 303
    return client


def test_the_owner_manages_teams_members_and_permissions(app: Flask, people: None) -> None:
    alice = as_user(app, "alice")
    page = get(alice, ORG).get_data(as_text=True)
    assert 'id="team-devs"' in page and "the people who push" in page
    assert 'id="create-team"' in page and 'id="add-owner"' in page

    assert post(alice, f"{ORG}/-/teams", {"name": "readers", "description": ""},
                token_from=ORG).status_code == 303
    assert post(alice, f"{ORG}/-/teams/readers/members", {"username": "carol"},
                token_from=ORG).status_code == 303
    assert post(alice, f"{ORG}/-/teams/readers/permissions",
                {"target": "acme/app", "permission": "read"}, token_from=ORG).status_code == 303
    readers = next(t for t in view(app).teams if t.name == "readers")
    assert readers.members == ("carol",) and readers.permissions == (("acme/app", "read"),)

    assert post(alice, f"{ORG}/-/teams/devs/members/remove", {"username": "bob"},
                token_from=ORG).status_code == 303
    assert post(alice, f"{ORG}/-/teams/readers/permissions/remove", {"target": "acme/app"},
                token_from=ORG).status_code == 303
    assert post(alice, f"{ORG}/-/owners", {"username": "carol"},
                token_from=ORG).status_code == 303
    after = view(app)
    assert after.owners == ("alice", "carol")
    assert next(t for t in after.teams if t.name == "devs").members == ()
    assert next(t for t in after.teams if t.name == "readers").permissions == ()
    assert post(alice, f"{ORG}/-/teams/readers/delete", {}, token_from=ORG).status_code == 303
    assert [t.name for t in view(app).teams] == ["devs"]


def test_a_member_sees_the_page_and_the_repositories_but_changes_nothing(
        app: Flask, people: None) -> None:
    push(app, "acme/app")
    bob = as_user(app, "bob")
    page = get(bob, ORG)
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "acme/app" in text
    assert 'id="add-owner"' not in text and 'id="create-team"' not in text
    assert "acme/app" in get(bob, "/ui").get_data(as_text=True)
    assert 'class="org-link"' in get(bob, "/ui/orgs").get_data(as_text=True)
    before = view(app)
    for path, data in [(f"{ORG}/-/owners", {"username": "bob"}),
                       (f"{ORG}/-/teams", {"name": "mine"}),
                       (f"{ORG}/-/teams/devs/members", {"username": "carol"}),
                       (f"{ORG}/-/teams/devs/permissions",
                        {"target": "acme/*", "permission": "admin"}),
                       (f"{ORG}/-/teams/devs/delete", {}),
                       (f"{ORG}/-/delete", {"confirm": "acme"})]:
        assert post(bob, path, data, token_from=ORG).status_code == 403, path
    assert view(app) == before


@pytest.mark.parametrize("path", [ORG, f"{ORG}/-/delete", "/ui/orgs/nothing-like-it"])
def test_a_stranger_gets_404_and_changes_nothing(app: Flask, people: None, path: str) -> None:
    carol = as_user(app, "carol")
    assert get(carol, path).status_code == 404
    before = view(app)
    answer = post(carol, f"{ORG}/-/teams/devs/members", {"username": "carol"},
                  token_from="/ui/orgs")
    assert answer.status_code == 404
    assert post(carol, f"{ORG}/-/owners", {"username": "carol"},
                token_from="/ui/orgs").status_code == 404
    assert view(app) == before
    assert 'class="org-link"' not in get(carol, "/ui/orgs").get_data(as_text=True)


def test_without_csrf_nothing_changes(app: Flask, people: None) -> None:
    alice = as_user(app, "alice")
    before = view(app)
    assert post(alice, f"{ORG}/-/teams/devs/members", {"username": "carol"}).status_code == 400
    assert post(alice, f"{ORG}/-/owners", {"username": "carol"}).status_code == 400
    assert view(app) == before


def test_forms_say_which_field_is_wrong(app: Flask, people: None) -> None:
    alice = as_user(app, "alice")
    before = view(app)
    bad_team = post(alice, f"{ORG}/-/teams", {"name": "Not A Name!"}, token_from=ORG)
    assert bad_team.status_code == 422
    assert 'id="name-error"' in bad_team.get_data(as_text=True)
    outside = post(alice, f"{ORG}/-/teams/devs/permissions",
                   {"target": "other/app", "permission": "write"}, token_from=ORG)
    text = outside.get_data(as_text=True)
    assert outside.status_code == 422 and 'id="target-devs-error"' in text
    assert "is not in the organisation" in text
    wrong = post(alice, f"{ORG}/-/teams/devs/permissions",
                 {"target": "acme/*", "permission": "owner"}, token_from=ORG)
    assert wrong.status_code == 422 and "Choose read, write or admin." in wrong.get_data(
        as_text=True)
    member = post(alice, f"{ORG}/-/teams/devs/members", {"username": "Bad Name"},
                  token_from=ORG)
    assert member.status_code == 422 and 'id="member-devs-error"' in member.get_data(
        as_text=True)
    last = post(alice, f"{ORG}/-/owners/remove", {"username": "alice"}, token_from=ORG)
    assert last.status_code == 409 and "last owner" in last.get_data(as_text=True)
    assert view(app) == before


def test_deleting_asks_for_the_name_and_for_force_when_it_holds_repositories(
        app: Flask, people: None) -> None:
    push(app, "acme/app")
    alice = as_user(app, "alice")
    confirm = get(alice, f"{ORG}/-/delete").get_data(as_text=True)
    assert 'id="holds-repositories"' in confirm and "1 repository" in confirm
    wrong = post(alice, f"{ORG}/-/delete", {"confirm": "acm"}, token_from=f"{ORG}/-/delete")
    assert wrong.status_code == 422 and 'id="confirm-error"' in wrong.get_data(as_text=True)
    unforced = post(alice, f"{ORG}/-/delete", {"confirm": "acme"},
                    token_from=f"{ORG}/-/delete")
    assert unforced.status_code == 409 and "1 repository" in unforced.get_data(as_text=True)
    assert view(app).repositories == 1
    forced = post(alice, f"{ORG}/-/delete", {"confirm": "acme", "force": "y"},
                  token_from=f"{ORG}/-/delete")
    assert forced.status_code == 303 and forced.headers["Location"] == "/ui/orgs"
    with app.app_context():
        assert not services_of(app).orgs.exists("acme")
        assert services_of(app).repos.find("acme/app") is None


def test_only_admins_create_organisations_by_default(app: Flask, people: None) -> None:
    alice = as_user(app, "alice")
    assert 'id="create-org"' not in get(alice, "/ui/orgs").get_data(as_text=True)
    assert post(alice, "/ui/orgs", {"name": "initech"},
                token_from="/ui/orgs").status_code == 403
    root = as_user(app, "root")
    taken = post(root, "/ui/orgs", {"name": "bob"}, token_from="/ui/orgs")
    assert taken.status_code == 422 and "taken" in taken.get_data(as_text=True)
    made = post(root, "/ui/orgs", {"name": "initech", "owners": "carol, alice"},
                token_from="/ui/orgs")
    assert made.status_code == 303 and made.headers["Location"] == "/ui/orgs/initech"
    with app.app_context():
        assert services_of(app).orgs.view("initech").owners == ("alice", "carol")


@pytest.mark.app_config(ORG_CREATORS="users")
def test_users_create_one_and_own_it_when_allowed(app: Flask, people: None) -> None:
    carol = as_user(app, "carol")
    assert 'id="create-org"' in get(carol, "/ui/orgs").get_data(as_text=True)
    made = post(carol, "/ui/orgs", {"name": "initech"}, token_from="/ui/orgs")
    assert made.status_code == 303
    with app.app_context():
        assert services_of(app).orgs.view("initech").owners == ("carol",)
    bad = post(carol, "/ui/orgs", {"name": "umbrella", "owners": "No Such!"},
               token_from="/ui/orgs")
    assert bad.status_code == 422 and 'id="owners-error"' in bad.get_data(as_text=True)
    with app.app_context():
        assert not services_of(app).orgs.exists("umbrella")


def test_an_org_repository_without_grants_says_who_reaches_it(app: Flask,
                                                               people: None) -> None:
    push(app, "acme/app")
    page = get(as_user(app, "alice"), "/ui/r/acme/app").get_data(as_text=True)
    assert "No grants: only the owners and teams of acme, and admins, reach" in page

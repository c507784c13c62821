"""Repository names are the registry's names, exactly as the registry sees them (issue 10,
finding 2): nothing is ever stripped from a name, so a user whose name looks like a host
(``john.smith``, ``localhost``, ``registry.example.com``) owns the namespace of that name, and
nobody gains it. A name with a ``host:port/`` prefix still parses as a scope, but the registry
cannot hold it: it is granted nothing, to anyone.

The token endpoint, the API and the policy agree on every name: the plain tests walk through
the scenario of the report, the property tests over generated user and repository names.
"""

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from authsvc.core.policy import (
    REPOSITORY_ACTIONS,
    RepoFacts,
    Subject,
    granted_actions,
    held_actions,
)
from authsvc.core.scopes import Scope, parse_scope
from authsvc.db.models import db
from authsvc.db.services import Services
from tests.api_helpers import ROOT, call, error_of, snapshot, token_actions
from tests.conftest import PASSWORD
from tests.token_helpers import Decode
from tests.token_helpers import fresh_database as fresh_database

ALL3 = set(REPOSITORY_ACTIONS)
JOHN = ("john.smith", PASSWORD)
BOB = ("bob", PASSWORD)


@pytest.fixture
def people(make_user: Any) -> None:
    make_user("root", admin=True)
    make_user("john.smith")
    make_user("bob")


# -- the scenario of the report ----------------------------------------------------------------

def test_a_dotted_user_holds_their_namespace(client: FlaskClient, decode: Decode,
                                             people: None) -> None:
    assert token_actions(client, decode, "john.smith/app", JOHN) == ALL3
    assert token_actions(client, decode, "john.smith/team/app", JOHN, "*") == {"*"}


def test_nobody_takes_over_a_dotted_namespace(app: Flask, client: FlaskClient, decode: Decode,
                                              people: None) -> None:
    """bob got pull, push and delete on ``john.smith/bob/app`` (read as ``bob/app``), and his
    push registered ``bob/app``."""
    before = snapshot(app)
    assert token_actions(client, decode, "john.smith/bob/app", BOB) == set()
    assert snapshot(app) == before


def test_anonymous_does_not_pull_a_dotted_users_repository_named_like_a_public_one(
        client: FlaskClient, decode: Decode, people: None) -> None:
    assert call(client, "POST", "/repositories", ROOT,
                json={"name": "httpd", "visibility": "public"}).status_code == 201
    assert call(client, "POST", "/repositories", JOHN,
                json={"name": "john.smith/httpd"}).status_code == 201
    assert token_actions(client, decode, "httpd", None, "pull") == {"pull"}
    assert token_actions(client, decode, "john.smith/httpd", None, "pull") == set()
    assert token_actions(client, decode, "john.smith/httpd", BOB, "pull") == set()


def test_a_dotted_users_visibility_and_grants_take_effect_on_tokens(
        client: FlaskClient, decode: Decode, people: None) -> None:
    assert call(client, "POST", "/repositories", JOHN,
                json={"name": "john.smith/web"}).status_code == 201
    assert token_actions(client, decode, "john.smith/web", None) == set()
    assert call(client, "PATCH", "/repositories/john.smith/web", JOHN,
                json={"visibility": "public"}).status_code == 200
    assert token_actions(client, decode, "john.smith/web", None) == {"pull"}
    assert token_actions(client, decode, "john.smith/web", BOB) == {"pull"}
    grant = "/repositories/john.smith/web/-/grants/bob"
    assert call(client, "PUT", grant, JOHN, json={"actions": ["push"]}).status_code == 200
    assert token_actions(client, decode, "john.smith/web", BOB) == {"pull", "push"}
    assert call(client, "PATCH", "/repositories/john.smith/web", JOHN,
                json={"visibility": "private"}).status_code == 200
    assert token_actions(client, decode, "john.smith/web", BOB) == {"push"}
    assert call(client, "DELETE", grant, JOHN).status_code == 204
    assert token_actions(client, decode, "john.smith/web", BOB) == set()
    namespace = "/namespaces/john.smith/grants/bob"
    assert call(client, "PUT", namespace, JOHN, json={"actions": ["pull"]}).status_code == 200
    assert token_actions(client, decode, "john.smith/web", BOB) == {"pull"}
    assert token_actions(client, decode, "john.smith/other/x", BOB) == {"pull"}


@pytest.mark.parametrize("username", ["localhost", "registry.example.com", "a.b"])
def test_users_named_like_hosts_own_their_namespace(client: FlaskClient, decode: Decode,
                                                    make_user: Any, username: str) -> None:
    make_user(username)
    make_user("bob")
    who = (username, PASSWORD)
    assert token_actions(client, decode, f"{username}/app", who) == ALL3  # registers it
    assert token_actions(client, decode, f"{username}/bob/app", BOB) == set()
    assert token_actions(client, decode, "bob/app", who) == set()
    assert call(client, "GET", f"/repositories/{username}/app", who).status_code == 200
    assert call(client, "POST", "/repositories", who,
                json={"name": f"{username}/web"}).status_code == 201


@pytest.mark.parametrize("name", ["myreg:5000/john.smith/app", "localhost:5000/bob/app",
                                  "[::1]:5000/bob/app", "MyReg.Example/bob/app",
                                  "myreg:5000/httpd"])
def test_a_name_with_a_registry_host_and_port_is_granted_nothing(
        app: Flask, client: FlaskClient, decode: Decode, people: None, name: str) -> None:
    """The scope parses (PROTOCOL §1.5), but no user namespace and no repository record can
    have such a name: nothing for anyone, admins included, and nothing is registered."""
    before = snapshot(app)
    for who in (JOHN, BOB, ROOT, None):
        assert token_actions(client, decode, name, who) == set()
        assert token_actions(client, decode, name, who, "*") == set()
    assert snapshot(app) == before
    error_of(call(client, "POST", "/repositories", ROOT, json={"name": name}), 422,
             "NAME_INVALID")


# -- the policy, over generated names ----------------------------------------------------------

COMPONENT = r"[a-z0-9]{1,3}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,3}){0,2}"
components = st.from_regex(COMPONENT, fullmatch=True)
#: Users whose names a host parser would take for a registry host, and plain ones.
usernames = st.one_of(st.sampled_from(["john.smith", "localhost", "registry.example.com",
                                       "a_b", "a__b", "a--b", "x"]), components)
hosts = st.sampled_from(["myreg:5000", "localhost:5000", "[::1]:5000", "Reg.Example",
                         "reg.example:443"])


@st.composite
def user_and_name(draw: st.DrawFn) -> tuple[str, str, str]:
    """A user, a stranger, and a repository name whose first component is one of them or
    another, and whose other components may repeat either name."""
    user = draw(usernames)
    stranger = draw(usernames.filter(lambda s: s not in (user, "root")))
    first = draw(st.one_of(st.just(user), st.just(stranger), components))
    rest = draw(st.lists(st.one_of(components, st.just(user), st.just(stranger)), max_size=3))
    return user, stranger, "/".join([first, *rest])


def owner_of(name: str) -> str | None:
    """The user namespace ``name`` lies in: its first component, when it has more than one
    (single-component names belong to admins)."""
    first, slash, _ = name.partition("/")
    return first if slash else None


def scope_on(name: str, actions: str = "pull,push,delete") -> Scope:
    return parse_scope(f"repository:{name}:{actions}")


@settings(database=None, max_examples=400, deadline=None)
@given(names=user_and_name(), public=st.booleans())
def test_policy_owner_holds_all_iff_first_component(names: tuple[str, str, str],
                                                    public: bool) -> None:
    user, stranger, name = names
    facts = RepoFacts(name, public=public)
    mine = owner_of(name) == user
    assert granted_actions(Subject(user), scope_on(name), facts) == (
        ALL3 if mine else {"pull"} if public else set())
    assert granted_actions(Subject(stranger), scope_on(name), facts) == (
        ALL3 if owner_of(name) == stranger else {"pull"} if public else set())
    assert granted_actions(Subject(None), scope_on(name), facts) == (
        {"pull"} if public else set())
    assert held_actions(Subject("root", admin=True), facts) == ALL3


@settings(database=None, max_examples=300, deadline=None)
@given(names=user_and_name(), host=hosts, public=st.booleans())
def test_policy_grants_nothing_on_a_name_with_a_host(names: tuple[str, str, str], host: str,
                                                     public: bool) -> None:
    user, _, name = names
    full = f"{host}/{name}"
    scope = scope_on(full, "*")
    assert scope.name == full
    for subject in (Subject(user), Subject("root", admin=True), Subject(None)):
        assert granted_actions(subject, scope, RepoFacts(full, public=public)) == set()


# -- the token endpoint and the API, over generated names ------------------------------------

def listed(client: FlaskClient, name: str, who: tuple[str, str]) -> bool:
    """Whether ``GET /repositories`` shows ``who`` the repository ``name``."""
    response = call(client, "GET", "/repositories", who, query_string={"q": name})
    assert response.status_code == 200, response.json
    return name in [r["name"] for r in response.json["items"]]


def shown(client: FlaskClient, name: str, who: tuple[str, str]) -> bool:
    """Whether ``GET /repositories/<name>`` answers ``who`` (200) or hides it (404)."""
    status = call(client, "GET", f"/repositories/{name}", who).status_code
    assert status in (200, 404)
    return status == 200


NAMES = settings(database=None, max_examples=100, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow, HealthCheck.filter_too_much])


@NAMES
@given(names=user_and_name(), public=st.booleans(),
       granted=st.sets(st.sampled_from(sorted(REPOSITORY_ACTIONS)), min_size=1))
def test_api_and_token_endpoint_agree_on_every_name(
        client: FlaskClient, decode: Decode, fresh_database: Callable[[], Services],
        names: tuple[str, str, str], public: bool, granted: set[str]) -> None:
    user, stranger, name = names
    note(f"user={user!r} stranger={stranger!r} name={name!r}")
    state = fresh_database()
    for who, admin in ((user, False), (stranger, False), ("root", True)):
        state.accounts.create_user(who, PASSWORD, admin=admin)
    db.session.remove()
    u, s = (user, PASSWORD), (stranger, PASSWORD)
    mine = owner_of(name) == user
    visibility = "public" if public else "private"

    # the API lets the owner (and only the owner, or an admin) register the name
    created = call(client, "POST", "/repositories", u, json={"name": name,
                                                             "visibility": visibility})
    assert created.status_code == (201 if mine else 403), created.json
    manager = u if mine else ROOT
    if not mine:
        assert call(client, "POST", "/repositories", ROOT,
                    json={"name": name, "visibility": visibility}).status_code == 201
    strangers_pull = {"pull"} if public else set()
    stranger_owns = owner_of(name) == stranger

    # what the token endpoint grants
    assert token_actions(client, decode, name, u) == (ALL3 if mine else strangers_pull)
    assert token_actions(client, decode, name, ROOT) == ALL3
    assert token_actions(client, decode, name, None) == strangers_pull
    if not stranger_owns:
        assert token_actions(client, decode, name, s) == strangers_pull
        assert listed(client, name, s) is public
        assert shown(client, name, s) is public
    assert listed(client, name, u) is (mine or public)

    # the API's changes are what the token endpoint then grants
    flipped = "private" if public else "public"
    assert call(client, "PATCH", f"/repositories/{name}", manager,
                json={"visibility": flipped}).status_code == 200
    assert token_actions(client, decode, name, None) == ({"pull"} if not public else set())
    grants = f"/repositories/{name}/-/grants"
    assert call(client, "PUT", f"{grants}/{stranger}", manager,
                json={"actions": sorted(granted)}).status_code == 200
    listing = call(client, "GET", grants, manager)
    assert listing.json["items"] == [{"username": stranger, "target": name,
                                      "actions": sorted(granted)}]
    held = ALL3 if stranger_owns else granted | ({"pull"} if not public else set())
    assert token_actions(client, decode, name, s) == held
    if not stranger_owns:
        assert listed(client, name, s) is ("pull" in held)
    assert call(client, "DELETE", f"{grants}/{stranger}", manager).status_code == 204
    assert token_actions(client, decode, name, s) == (
        ALL3 if stranger_owns else {"pull"} if not public else set())
    assert call(client, "DELETE", f"/repositories/{name}", manager).status_code == 204
    assert token_actions(client, decode, name, None) == set()

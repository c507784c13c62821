"""Who gets what: truth tables over subject × owner × visibility × grants × requested actions."""

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authsvc.core.policy import (
    ANONYMOUS,
    REPOSITORY_ACTIONS,
    Grant,
    RepoFacts,
    Subject,
    TokenLimit,
    granted_actions,
    held_actions,
    may_create_repository,
    may_manage_namespace,
    may_manage_repository,
    may_manage_user,
    may_read_grants,
    namespace_of,
    parse_actions,
)
from authsvc.core.scopes import Scope
from authsvc.errors import InvalidRequest

ALICE = Subject("alice")
BOB = Subject("bob")
ADMIN = Subject("root", admin=True)
DISABLED_OWNER = Subject("alice", disabled=True)
DISABLED_ADMIN = Subject("root", admin=True, disabled=True)

SUBJECTS = {
    "anonymous": ANONYMOUS,
    "alice": ALICE,  # owner of alice/*
    "bob": BOB,
    "admin": ADMIN,
    "disabled": DISABLED_OWNER,
}
GRANTS = {
    "none": (),
    "pull": (Grant("alice/app", frozenset({"pull"})),),
    "ns-wide": (Grant("alice/*", frozenset({"pull", "push"})),),
}
ALL3 = {"pull", "push", "delete"}

# (subject, visibility, grant) -> every concrete action held on alice/app
HELD = {
    ("anonymous", "public", "none"): {"pull"},
    ("anonymous", "public", "pull"): {"pull"},
    ("anonymous", "public", "ns-wide"): {"pull"},       # anonymous holds no grants
    ("anonymous", "private", "none"): set(),
    ("anonymous", "private", "pull"): set(),
    ("anonymous", "private", "ns-wide"): set(),
    ("alice", "public", "none"): ALL3,
    ("alice", "public", "pull"): ALL3,
    ("alice", "public", "ns-wide"): ALL3,
    ("alice", "private", "none"): ALL3,
    ("alice", "private", "pull"): ALL3,
    ("alice", "private", "ns-wide"): ALL3,
    ("bob", "public", "none"): {"pull"},
    ("bob", "public", "pull"): {"pull"},
    ("bob", "public", "ns-wide"): {"pull", "push"},
    ("bob", "private", "none"): set(),
    ("bob", "private", "pull"): {"pull"},
    ("bob", "private", "ns-wide"): {"pull", "push"},
    ("admin", "public", "none"): ALL3,
    ("admin", "public", "pull"): ALL3,
    ("admin", "public", "ns-wide"): ALL3,
    ("admin", "private", "none"): ALL3,
    ("admin", "private", "pull"): ALL3,
    ("admin", "private", "ns-wide"): ALL3,
    ("disabled", "public", "none"): set(),              # disabled gets nothing, not even public
    ("disabled", "public", "pull"): set(),
    ("disabled", "public", "ns-wide"): set(),
    ("disabled", "private", "none"): set(),
    ("disabled", "private", "pull"): set(),
    ("disabled", "private", "ns-wide"): set(),
}

# requested -> {held -> granted}, the protocol's rule written out (PROTOCOL §1.5, §14):
# intersection; a requested "*" is answered with "*" only for full rights, else the concrete ones.
REQUESTS = ["pull", "pull,push", "delete", "*", "pull,scanner-pull", ""]


def expected_grant(requested: str, held: set[str]) -> set[str]:
    wanted = {a for a in requested.split(",") if a}
    if "*" in wanted:
        return {"*"} if held == ALL3 else held
    return wanted & held


def repo(visibility: str, grant: str, path: str = "alice/app") -> RepoFacts:
    return RepoFacts(path, public=visibility == "public", grants=GRANTS[grant])


def scope(actions: str, name: str = "alice/app", rtype: str = "repository") -> Scope:
    return Scope(rtype, name, frozenset(a for a in actions.split(",") if a))


@pytest.mark.parametrize("requested", REQUESTS)
@pytest.mark.parametrize(("subject", "visibility", "grant"), list(HELD),
                         ids=["-".join(k) for k in HELD])
def test_truth_table(subject: str, visibility: str, grant: str, requested: str) -> None:
    facts = repo(visibility, grant)
    held = HELD[(subject, visibility, grant)]
    assert held_actions(SUBJECTS[subject], facts) == held
    granted = granted_actions(SUBJECTS[subject], scope(requested), facts)
    assert granted == expected_grant(requested, held)


@pytest.mark.parametrize(
    ("subject", "facts", "requested", "granted"),
    [
        # the rows a reader checks first, written out literally
        (ANONYMOUS, RepoFacts("alice/app", public=True), "pull,push", {"pull"}),
        (ANONYMOUS, RepoFacts("alice/app"), "pull", set()),
        (ALICE, RepoFacts("alice/app"), "pull,push", {"pull", "push"}),
        (ALICE, RepoFacts("alice/team/app"), "delete", {"delete"}),
        (BOB, RepoFacts("alice/app"), "pull,push", set()),
        (BOB, RepoFacts("alice/app", public=True), "pull,push", {"pull"}),
        (BOB, RepoFacts("alice/app", grants=GRANTS["ns-wide"]), "pull,push,delete",
         {"pull", "push"}),
        # `*` by the owner is echoed; by someone holding less it is expanded
        (ALICE, RepoFacts("alice/app"), "*", {"*"}),
        (ADMIN, RepoFacts("bob/app"), "*", {"*"}),
        (BOB, RepoFacts("alice/app", grants=GRANTS["pull"]), "*", {"pull"}),
        (BOB, RepoFacts("alice/app", public=True), "*", {"pull"}),
        (BOB, RepoFacts("alice/app", grants=GRANTS["ns-wide"]), "*", {"pull", "push"}),
        (BOB, RepoFacts("alice/app"), "*", set()),
        (ANONYMOUS, RepoFacts("alice/app", public=True), "*", {"pull"}),
        (DISABLED_OWNER, RepoFacts("alice/app", public=True), "*", set()),
        (DISABLED_ADMIN, RepoFacts("alice/app", public=True), "pull", set()),
        # unknown actions are simply not granted
        (ADMIN, RepoFacts("alice/app"), "scanner-pull", set()),
        (ALICE, RepoFacts("alice/app"), "pull,bogus", {"pull"}),
        # single-component names have no user owner: only admins write them
        (ALICE, RepoFacts("httpd"), "pull,push", set()),
        (Subject("httpd"), RepoFacts("httpd"), "pull,push", set()),
        (ALICE, RepoFacts("httpd", public=True), "pull,push", {"pull"}),
        (ADMIN, RepoFacts("httpd"), "pull,push,delete", ALL3),
        # the namespace is the first component exactly, not a prefix of it
        (ALICE, RepoFacts("alicex/app"), "pull", set()),
        (ALICE, RepoFacts("ali/app"), "pull", set()),
        # grants cover their own target only
        (BOB, RepoFacts("alice/app", grants=(Grant("alice/other", frozenset({"pull"})),)),
         "pull", set()),
        (BOB, RepoFacts("alicex/app", grants=(Grant("alice/*", frozenset({"pull"})),)),
         "pull", set()),
        (BOB, RepoFacts("alice/team/app", grants=(Grant("alice/*", frozenset({"pull"})),)),
         "pull", {"pull"}),
        (BOB, RepoFacts("alice/app", grants=(Grant("alice/app", frozenset({"delete"})),)),
         "pull,delete", {"delete"}),
    ],
)
def test_notable_rows(subject: Subject, facts: RepoFacts, requested: str,
                      granted: set[str]) -> None:
    assert granted_actions(subject, scope(requested, facts.path), facts) == granted


def test_resource_class_does_not_change_the_answer() -> None:
    facts = RepoFacts("alice/app")
    plugin = Scope("repository", "alice/app", frozenset({"pull", "push"}), "plugin")
    assert granted_actions(ALICE, plugin, facts) == {"pull", "push"}
    assert granted_actions(BOB, plugin, facts) == set()


ADMIN_TOKEN = Subject("root", admin=True, limit=TokenLimit(frozenset({"pull"})))
ALICE_TOKEN = Subject("alice", limit=TokenLimit(frozenset({"pull"}), ("alice/*",)))


@pytest.mark.parametrize(
    ("subject", "requested", "granted"),
    [
        (ADMIN, "*", {"*"}),
        (ADMIN, "search", {"search"}),
        (ADMIN, "*,search", {"*", "search"}),
        (ADMIN, "pull,search", {"search"}),
        (ALICE, "*", set()),
        (ALICE, "search", {"search"}),
        (ALICE, "*,search", {"search"}),
        (BOB, "search,pull,push", {"search"}),
        (ALICE_TOKEN, "search", {"search"}),
        (ALICE_TOKEN, "*,search", {"search"}),
        (ADMIN_TOKEN, "*,search", {"search"}),
        (ANONYMOUS, "*", set()),
        (ANONYMOUS, "search", set()),
        (DISABLED_ADMIN, "*,search", set()),
        (DISABLED_OWNER, "search", set()),
        (ADMIN, "", set()),
        (ALICE, "", set()),
    ],
)
def test_catalog_search_for_every_caller_and_all_of_it_for_admins(
        subject: Subject, requested: str, granted: set[str]) -> None:
    """``search`` (Docker's /v1/search, filtered per caller) for everyone who logged in;
    ``*`` (the registry's unfiltered /v2/_catalog) for admins without an access token."""
    catalog = scope(requested, name="catalog", rtype="registry")
    # the caller has no repository facts for a registry resource
    assert granted_actions(subject, catalog, None) == granted
    assert granted_actions(subject, catalog, RepoFacts("catalog", public=True)) == granted


@pytest.mark.parametrize(
    "unknown",
    [
        scope("*", name="other", rtype="registry"),
        scope("pull", name="alice/app", rtype="namespace"),
        scope("pull,push", name="alice/app", rtype="foo"),
        scope("*", name="catalog", rtype="repository"),
    ],
    ids=str,
)
@pytest.mark.parametrize("subject", [ADMIN, ALICE, ANONYMOUS], ids=["admin", "alice", "anon"])
def test_unknown_resource_types_get_nothing(unknown: Scope, subject: Subject) -> None:
    facts = RepoFacts("alice/app", public=True) if unknown.type != "repository" else None
    assert granted_actions(subject, unknown, facts) == set()


@pytest.mark.parametrize(
    ("path", "namespace"),
    [("alice/app", "alice"), ("alice/team/app", "alice"), ("httpd", None)],
)
def test_namespace_of(path: str, namespace: str | None) -> None:
    assert namespace_of(path) == namespace


@pytest.mark.parametrize(
    ("text", "actions"),
    [
        ("pull", {"pull"}),
        ("pull,push", {"pull", "push"}),
        (" push , pull ,", {"pull", "push"}),
        ("delete", {"delete"}),
        ("*", ALL3),
        ("pull,*", ALL3),
        (["push", "delete"], {"push", "delete"}),
        (["*"], ALL3),
    ],
)
def test_parse_actions(text: str | list[str], actions: set[str]) -> None:
    assert parse_actions(text) == actions


@pytest.mark.parametrize("text", ["", " , ", "bogus", "pull,bogus", "PULL", [], ["pull", "x"]])
def test_parse_actions_refuses(text: str | list[str]) -> None:
    with pytest.raises(InvalidRequest):
        parse_actions(text)


# -- property: whatever the inputs, the answer never exceeds what was asked for and held --------

ACTION_WORDS = ["pull", "push", "delete", "*", "scanner-pull", "search", "bogus"]
PATHS = ["alice/app", "bob/app", "alice/team/app", "httpd", "catalog"]

subjects = st.one_of(
    st.just(ANONYMOUS),
    st.builds(Subject, st.sampled_from(["alice", "bob", "httpd"]), st.booleans(), st.booleans()),
)
grants = st.builds(
    Grant,
    st.sampled_from(["alice/app", "alice/*", "bob/*", "httpd", "alice/team/*"]),
    st.frozensets(st.sampled_from(["pull", "push", "delete"])),
)
scopes = st.builds(
    Scope,
    st.sampled_from(["repository", "registry", "foo"]),
    st.sampled_from(PATHS),
    st.frozensets(st.sampled_from(ACTION_WORDS)),
    st.sampled_from([None, "plugin"]),
)


# hypothesis explains a failure with libcst, which imports the deprecated mypy_extensions.TypedDict;
# under filterwarnings=error that would turn a real failure into a pytest INTERNALERROR.
@pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")
@settings(database=None, max_examples=500, deadline=None)
@given(subject=subjects, requested=scopes, public=st.booleans(),
       repo_grants=st.lists(grants, max_size=3))
def test_granted_never_exceeds_requested_or_held(
    subject: Subject, requested: Scope, public: bool, repo_grants: list[Grant],
) -> None:
    facts = RepoFacts(requested.name, public=public, grants=tuple(repo_grants))
    granted = granted_actions(subject, requested, facts)

    allowed = set(requested.actions)
    if "*" in requested.actions:
        allowed |= REPOSITORY_ACTIONS
    assert granted <= allowed
    if "*" in granted:
        assert "*" in requested.actions
    if subject.disabled:
        assert granted == set()
    if (requested.type, requested.name) == ("registry", "catalog"):
        assert granted <= {"*", "search"}
        if subject.anonymous:
            assert granted == set()
        if not subject.admin:
            assert "*" not in granted
        if not subject.anonymous and not subject.disabled:
            assert granted == requested.actions & ({"*", "search"} if subject.admin
                                                   else {"search"})
    elif requested.type != "repository":
        assert granted == set()
    else:
        held = held_actions(subject, facts)
        assert granted - {"*"} <= held
        if "*" in granted:
            assert held == REPOSITORY_ACTIONS
        if subject.anonymous:
            assert granted <= ({"pull"} if public else set())


# -- access-token callers and who may manage what --------------------------------------------

READ = TokenLimit(frozenset({"pull"}))
WRITE_A = TokenLimit(frozenset({"pull", "push"}), ("alice/a",))
DELETE_NS = TokenLimit(frozenset({"pull", "push", "delete"}), ("alice/*",))


@pytest.mark.parametrize(("subject", "path", "requested", "granted"), [
    (Subject("alice", limit=READ), "alice/a", "pull,push", {"pull"}),
    (Subject("alice", limit=WRITE_A), "alice/a", "pull,push,delete", {"pull", "push"}),
    (Subject("alice", limit=WRITE_A), "alice/b", "pull", set()),
    (Subject("alice", limit=DELETE_NS), "alice/b", "*", {"*"}),
    (Subject("alice", limit=DELETE_NS), "bob/b", "pull", set()),
    (Subject("root", admin=True, limit=READ), "x/y", "pull,push", {"pull"}),
    (Subject("bob", limit=DELETE_NS), "alice/b", "pull,push", set()),
])
def test_token_callers_hold_at_most_the_token_and_the_owner(
        subject: Subject, path: str, requested: str, granted: set[str]) -> None:
    assert granted_actions(subject, scope(requested, path), repo("private", "none", path)) == (
        granted)


def test_token_callers_search_but_never_get_the_whole_catalog() -> None:
    catalog = scope("*,search", "catalog", "registry")
    assert granted_actions(Subject("root", admin=True, limit=DELETE_NS), catalog, None) == {
        "search"}
    assert granted_actions(Subject("alice", limit=READ), catalog, None) == {"search"}


@pytest.mark.parametrize(("actor", "username", "allowed"), [
    (Subject("alice"), "alice", True),
    (Subject("alice"), "bob", False),
    (Subject("root", admin=True), "bob", True),
    (Subject("alice", limit=DELETE_NS), "alice", False),
    (Subject("root", admin=True, limit=DELETE_NS), "bob", False),
    (Subject("alice", disabled=True), "alice", False),
])
def test_may_manage_user(actor: Subject, username: str, allowed: bool) -> None:
    assert may_manage_user(actor, username) is allowed


@pytest.mark.parametrize(("actor", "path", "allowed"), [
    (Subject("alice"), "alice/a", True),
    (Subject("alice"), "alice/team/a", True),
    (Subject("alice"), "bob/a", False),
    (Subject("alice"), "httpd", False),
    (Subject("alice"), "alicex/a", False),
    (Subject("root", admin=True), "httpd", True),
    (Subject("alice", limit=READ), "alice/a", False),
    (Subject("alice", limit=WRITE_A), "alice/a", False),
    (Subject("alice", limit=DELETE_NS), "alice/a", False),
    (Subject("root", admin=True, limit=DELETE_NS), "alice/a", False),
    (Subject("alice", disabled=True), "alice/a", False),
    (Subject(None), "alice/a", False),
])
def test_may_manage_repository(actor: Subject, path: str, allowed: bool) -> None:
    assert may_manage_repository(actor, RepoFacts(path)) is allowed


@pytest.mark.parametrize(("actor", "namespace", "allowed"), [
    (Subject("alice"), "alice", True),
    (Subject("alice"), "bob", False),
    (Subject("root", admin=True), "bob", True),
    (Subject("alice", limit=WRITE_A), "alice", False),
    (Subject("alice", limit=DELETE_NS), "alice", False),
    (Subject("root", admin=True, limit=DELETE_NS), "alice", False),
    (Subject("alice", limit=READ), "alice", False),
    (Subject("alice", disabled=True), "alice", False),
    (Subject(None), "alice", False),
])
def test_may_manage_namespace(actor: Subject, namespace: str, allowed: bool) -> None:
    assert may_manage_namespace(actor, namespace) is allowed


# -- what a login may change: permission × change × owner/admin (issue 10, finding 3) ---------
#
# An access token's permission bounds what it may change as well as what it may pull and push:
# grants, visibility and repository records are managed with a password login only. A token
# with push on a path may register that repository as a push would (default visibility).

#: How the caller logged in: a password, or an access token of this permission (every
#: repository in reach).
LOGINS = {"password": None,
          "read token": TokenLimit(frozenset({"pull"})),
          "write token": TokenLimit(frozenset({"pull", "push"})),
          "delete token": TokenLimit(frozenset({"pull", "push", "delete"}))}
#: Each change the API makes, on alice's repository alice/app or her namespace.
CHANGES: dict[str, Callable[[Subject], bool]] = {
    "set a repository grant": lambda a: may_manage_repository(a, RepoFacts("alice/app")),
    "revoke a repository grant": lambda a: may_manage_repository(a, RepoFacts("alice/app")),
    "set a namespace grant": lambda a: may_manage_namespace(a, "alice"),
    "revoke a namespace grant": lambda a: may_manage_namespace(a, "alice"),
    "change visibility": lambda a: may_manage_repository(a, RepoFacts("alice/app")),
    "delete a repository record": lambda a: may_manage_repository(a, RepoFacts("alice/app")),
    "create, default visibility": lambda a: may_create_repository(a, RepoFacts("alice/app"), True),
    "create, other visibility": lambda a: may_create_repository(a, RepoFacts("alice/app"), False),
    "read repository grants": lambda a: may_read_grants(a, RepoFacts("alice/app")),
    "read namespace grants": lambda a: may_read_grants(a, RepoFacts("alice/*")),
}
PASSWORD_ONLY = {"password"}
#: change -> the logins that may make it, for the owner and for an admin alike.
ALLOWED = {
    "set a repository grant": PASSWORD_ONLY,
    "revoke a repository grant": PASSWORD_ONLY,
    "set a namespace grant": PASSWORD_ONLY,
    "revoke a namespace grant": PASSWORD_ONLY,
    "change visibility": PASSWORD_ONLY,
    "delete a repository record": PASSWORD_ONLY,
    "create, default visibility": {"password", "write token", "delete token"},
    "create, other visibility": PASSWORD_ONLY,
    "read repository grants": set(LOGINS),
    "read namespace grants": set(LOGINS),
}
WHO = {"owner": ("alice", False), "admin": ("root", True), "stranger": ("bob", False)}


@pytest.mark.parametrize("who", list(WHO))
@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("login", list(LOGINS))
def test_what_each_login_may_change(login: str, change: str, who: str) -> None:
    name, admin = WHO[who]
    actor = Subject(name, admin=admin, limit=LOGINS[login])
    expected = who != "stranger" and login in ALLOWED[change]
    assert CHANGES[change](actor) is expected
    assert CHANGES[change](Subject(name, admin=admin, disabled=True,
                                   limit=LOGINS[login])) is False


@pytest.mark.parametrize(("actor", "target", "allowed"), [
    (Subject("alice", limit=TokenLimit(frozenset({"pull"}), ("alice/app",))), "alice/app", True),
    (Subject("alice", limit=TokenLimit(frozenset({"pull"}), ("alice/app",))), "alice/b", False),
    (Subject("alice", limit=TokenLimit(frozenset({"pull"}), ("alice/app",))), "alice/*", False),
    (Subject("alice", limit=DELETE_NS), "alice/*", True),
    (Subject("alice"), "httpd", False),
    (Subject("root", admin=True), "httpd", True),
    (Subject(None), "alice/app", False),
])
def test_grants_are_read_by_the_owner_within_the_tokens_reach(actor: Subject, target: str,
                                                              allowed: bool) -> None:
    assert may_read_grants(actor, RepoFacts(target)) is allowed


@pytest.mark.parametrize(("actor", "path", "allowed"), [
    (Subject("alice", limit=WRITE_A), "alice/a", True),
    (Subject("alice", limit=WRITE_A), "alice/b", False),
    (Subject("alice", limit=DELETE_NS), "alice/deep/b", True),
    (Subject("alice", limit=DELETE_NS), "bob/b", False),
    (Subject("bob", limit=DELETE_NS), "alice/b", False),
    (Subject("root", admin=True, limit=WRITE_A), "alice/a", True),
    (Subject("root", admin=True, limit=WRITE_A), "httpd", False),
])
def test_a_push_token_creates_only_what_its_push_would(actor: Subject, path: str,
                                                       allowed: bool) -> None:
    assert may_create_repository(actor, RepoFacts(path), True) is allowed
    assert may_create_repository(actor, RepoFacts(path), False) is False

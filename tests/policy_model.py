"""The oracle of tests/test_token_fuzz_policy_model.py: what a token may hold, decided from the
rules (PROTOCOL §1.5, ``authsvc/core/policy.py``'s docstring) without calling
``authsvc.core.policy``.

A random world (users, repositories, grants, access and refresh tokens), random requests in it
(who asks, by which method, for which scopes), and the rules: who the caller is
(``authenticate``), what they hold on a repository (``held``) and what a request must be
granted (``expected_access``).
"""

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.token_checks import REPOSITORY_ACTIONS, registry_path
from tests.token_strategies import REQUEST_ACTIONS

USERS = ["alice", "bob", "carol", "root", "robo", "john.smith"]
NAMESPACES = [*USERS, "team", "lib", "alice-x"]
#: Repository paths: nested ones, a single-component one named like a user, a namespace whose
#: name extends a user's.
PATHS = ["alice/app", "alice/sub/deep", "bob/app", "carol/web", "root/sys", "robo/ci",
         "team/app", "team/sub/x", "lib/base", "alice-x/app", "httpd", "alice", "team",
         "john.smith/app", "john.smith/bob/app", "localhost/app"]
UNKNOWN_PATHS = ["zed/app", "nobody/x", "bob/app2"]
TARGETS = PATHS + [f"{ns}/*" for ns in NAMESPACES]
GRANT_ACTIONS = {"pull": {"pull"}, "push": {"push"}, "delete": {"delete"},
                 "pull,push": {"pull", "push"}, "pull,delete": {"pull", "delete"},
                 "push,delete": {"push", "delete"}, "delete,pull,push": REPOSITORY_ACTIONS,
                 "*": REPOSITORY_ACTIONS}
PERMISSIONS = {"read": {"pull"}, "write": {"pull", "push"},
               "delete": {"pull", "push", "delete"}}
#: What a catalog scope asks for: the request actions and, twice as likely as each of them,
#: Docker's ``search`` (``tests/token_checks.py``'s ``check_token_body`` lets a catalog entry
#: hold ``search`` and ``*``).
CATALOG_ACTIONS = [*REQUEST_ACTIONS, "search", "search"]
PREFIXES = ["", "", "", "myreg:5000/", "registry.example.com/", "localhost/", "localhost:5000/",
            "[::1]:5000/"]


@dataclass
class UserSpec:
    admin: bool
    disabled: bool
    robot: bool


@dataclass
class TokenSpec:
    owner: str
    permission: str
    targets: list[str]
    revoked: bool
    secret: str = ""


@dataclass
class RefreshSpec:
    owner: str
    secret: str = ""


@dataclass
class World:
    users: dict[str, UserSpec]
    repos: dict[str, str]
    grants: dict[tuple[str, str], frozenset[str]]
    tokens: list[TokenSpec]
    refresh: list[RefreshSpec]


@dataclass(frozen=True)
class ScopeSpec:
    """One requested scope, with the parts the oracle needs (it never parses the text)."""

    type: str
    resource_class: str | None
    name: str
    path: str | None  # the repository path, for repository scopes
    actions: tuple[str, ...]

    @property
    def text(self) -> str:
        cls = f"({self.resource_class})" if self.resource_class else ""
        return f"{self.type}{cls}:{self.name}:{','.join(self.actions)}"


@dataclass(frozen=True)
class Caller:
    kind: str  # anonymous, password, token, refresh, bearer
    user: str | None = None  # password: who; token: the Basic user name (None: the owner)
    good: bool = True  # password: the right one; refresh: the right client_id
    index: int = 0  # token or refresh token


@dataclass(frozen=True)
class TokenRequest:
    caller: Caller
    method: str
    scopes: tuple[ScopeSpec, ...]
    groups: tuple[int, ...]  # how many scopes go into each scope value (space-separated)
    offline: bool


@st.composite
def worlds(draw: st.DrawFn) -> World:
    users = {}
    for name in USERS:
        if name == "alice" or draw(st.booleans()):
            users[name] = UserSpec(admin=draw(st.sampled_from([False, False, False, True])),
                                   disabled=draw(st.sampled_from([False] * 4 + [True])),
                                   robot=name == "robo")
    present = sorted(users)
    repos = draw(st.dictionaries(st.sampled_from(PATHS), st.sampled_from(["public", "private"]),
                                 max_size=6))
    grants: dict[tuple[str, str], frozenset[str]] = {}
    for user, target, actions in draw(st.lists(st.tuples(
            st.sampled_from(present), st.sampled_from(TARGETS), st.sampled_from(
                sorted(GRANT_ACTIONS))), max_size=8)):
        grants[(user, target)] = frozenset(GRANT_ACTIONS[actions])
    tokens = [TokenSpec(owner, permission, targets, revoked) for owner, permission, targets, revoked
              in draw(st.lists(st.tuples(
                  st.sampled_from(present), st.sampled_from(sorted(PERMISSIONS)),
                  st.lists(st.sampled_from(TARGETS), max_size=3, unique=True),
                  st.sampled_from([False, False, False, True])),
                  max_size=4))]
    refresh = [RefreshSpec(owner) for owner in draw(st.lists(st.sampled_from(present),
                                                             max_size=2))]
    return World(users, repos, grants, tokens, refresh)


def scope_specs(world: World) -> st.SearchStrategy[ScopeSpec]:
    """Mostly repository scopes, mostly on paths the world says something about."""
    known = sorted({*world.repos, *(t for _, t in world.grants if not t.endswith("/*")),
                    *(f"{t[:-2]}/app" for _, t in world.grants if t.endswith("/*"))})
    paths = st.one_of(st.sampled_from(known), st.sampled_from(PATHS + UNKNOWN_PATHS)) if known \
        else st.sampled_from(PATHS + UNKNOWN_PATHS)
    actions = st.lists(st.sampled_from(REQUEST_ACTIONS), max_size=4)
    repository = st.builds(
        lambda cls, prefix, path, actions: ScopeSpec(
            "repository", cls, prefix + path, registry_path(prefix + path), tuple(actions)),
        st.sampled_from([None, None, None, "plugin"]), st.sampled_from(PREFIXES), paths,
        actions)
    catalog = st.builds(
        lambda cls, actions: ScopeSpec("registry", cls, "catalog", None, tuple(actions)),
        st.sampled_from([None, None, "x"]), st.lists(st.sampled_from(CATALOG_ACTIONS),
                                                     max_size=2))
    other = st.builds(
        lambda kind, name, actions: ScopeSpec(kind, None, name, None, tuple(actions)),
        st.sampled_from(["registry", "foo", "repositories"]),
        st.sampled_from([*PATHS, "other", "myreg:5000/alice/app"]), actions)
    return st.one_of(repository, repository, repository, repository, catalog, other)


@st.composite
def callers(draw: st.DrawFn, world: World) -> Caller:
    """Mostly callers who get in, so that most requests test the decision, not the login."""
    kinds = ["anonymous", "password", "password", "password", "password", "password"]
    if world.tokens:
        kinds += ["token", "token", "token", "bearer"]
    if world.refresh:
        kinds += ["refresh"]
    kind = draw(st.sampled_from(kinds))
    if kind == "anonymous":
        return Caller("anonymous")
    if kind == "password":
        enabled = sorted(name for name, user in world.users.items()
                         if not user.disabled and not user.robot)
        users = st.sampled_from([*USERS, "nobody"])
        user = draw(st.one_of(st.sampled_from(enabled), st.sampled_from(enabled), users)
                    if enabled else users)
        return Caller("password", user, draw(st.sampled_from([True, True, True, True, False])))
    if kind == "refresh":
        return Caller("refresh", None, draw(st.sampled_from([True, True, True, False])),
                      draw(st.integers(0, len(world.refresh) - 1)))
    index = draw(st.integers(0, len(world.tokens) - 1))
    if kind == "bearer":
        return Caller("bearer", None, True, index)
    return Caller("token", draw(st.sampled_from([None, None, None, None, "alice", "bob"])), True,
                  index)


@st.composite
def token_requests(draw: st.DrawFn, world: World) -> TokenRequest:
    caller = draw(callers(world))
    if caller.kind in ("anonymous", "bearer"):
        method = "GET"
    elif caller.kind == "refresh":
        method = "POST"
    else:
        method = draw(st.sampled_from(["GET", "POST"]))
    scopes = tuple(draw(st.lists(scope_specs(world), max_size=6)))
    groups: list[int] = []
    left = len(scopes)
    while left:
        size = draw(st.integers(1, left))
        groups.append(size)
        left -= size
    return TokenRequest(caller, method, scopes, tuple(groups), draw(st.booleans()))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[World, list[TokenRequest]]:
    world = draw(worlds())
    return world, draw(st.lists(token_requests(world), min_size=1, max_size=6))


@dataclass(frozen=True)
class Who:
    """The oracle's idea of the authenticated caller."""

    name: str | None
    admin: bool = False
    token: TokenSpec | None = None
    password_login: bool = False


def authenticate(world: World, caller: Caller) -> Who | None:
    """Who the caller is, or None when the request must be refused with 401."""
    if caller.kind == "anonymous":
        return Who(None)
    if caller.kind == "bearer":
        return None  # /token takes Basic credentials only
    if caller.kind == "password":
        user = world.users.get(caller.user or "")
        if user is None or user.robot or user.disabled or not caller.good:
            return None
        return Who(caller.user, user.admin, password_login=True)
    if caller.kind == "token":
        token = world.tokens[caller.index]
        owner = world.users[token.owner]
        if token.revoked or owner.disabled or caller.user not in (None, token.owner):
            return None
        return Who(token.owner, owner.admin, token)
    refresh = world.refresh[caller.index]
    owner = world.users[refresh.owner]
    if owner.disabled or not caller.good:
        return None
    return Who(refresh.owner, owner.admin)


def covers(target: str, path: str) -> bool:
    if target.endswith("/*"):
        return path.startswith(target[:-1])
    return target == path


def held(world: World, who: Who, path: str) -> set[str]:
    """Repository actions ``who`` holds on ``path`` under the rules."""
    owner, slash, _ = path.partition("/")
    if who.admin or (who.name is not None and slash and owner == who.name):
        actions = set(REPOSITORY_ACTIONS)
    else:
        actions = {"pull"} if world.repos.get(path) == "public" else set()
        for (user, target), granted in world.grants.items():
            if user == who.name and covers(target, path):
                actions |= granted
    if who.token is not None:
        in_reach = not who.token.targets or any(covers(t, path) for t in who.token.targets)
        actions &= PERMISSIONS[who.token.permission] if in_reach else set()
    return actions


def expected_actions(world: World, who: Who, kind: str, name: str, path: str | None,
                     requested: set[str]) -> set[str]:
    if (kind, name) == ("registry", "catalog"):
        # search for every caller who logged in; the whole catalog for admins without a token
        if who.name is None:
            return set()
        return requested & ({"search", "*"} if who.admin and who.token is None else {"search"})
    if kind != "repository" or path is None:
        return set()
    holds = held(world, who, path)
    if "*" in requested:
        return {"*"} if holds == REPOSITORY_ACTIONS else holds
    return requested & holds


def expected_access(world: World, who: Who, scopes: tuple[ScopeSpec, ...],
                    ) -> list[dict[str, Any]]:
    """One entry per requested (type, name), first appearance first, actions merged."""
    merged: dict[tuple[str, str], tuple[str | None, set[str]]] = {}
    for scope in scopes:
        path, actions = merged.get((scope.type, scope.name), (scope.path, set()))
        merged[(scope.type, scope.name)] = (path, actions | set(scope.actions))
    return [{"type": kind, "name": name,
             "actions": sorted(expected_actions(world, who, kind, name, path, requested))}
            for (kind, name), (path, requested) in merged.items()]


def spec_of(text: str) -> ScopeSpec:
    """A hand-written scope read the way the oracle reads one (``type(class):name:actions``)."""
    kind, rest = text.split(":", 1)
    kind, _, resource_class = kind.partition("(")
    name, actions = rest.rsplit(":", 1)
    path = registry_path(name) if kind == "repository" else None
    return ScopeSpec(kind, resource_class.rstrip(")") or None, name, path,
                     tuple(a for a in actions.split(",") if a))

"""The oracle of tests/test_policy_orgs.py: what a caller holds on a repository of a world with
organisations and teams, and who manages it, decided from the rules (issue 14: "a user's rights
= own namespace ∪ grants ∪ teams' permissions ∪ public pull; access tokens limit that further";
``authsvc/core/policy.py``'s docstring) without calling ``authsvc.core.policy``.

A world holds organisations and their owners, teams (members, permissions on ``org/*`` or on
one ``org/repo``), users' grants, the public repositories, and the caller: anonymous, or a user
who may be an admin, disabled, or logged in with an access token (a robot always is).
"""

from dataclasses import dataclass

from hypothesis import strategies as st

ACTIONS = frozenset({"pull", "push", "delete"})
#: What a team's permission pulls, pushes and deletes (issue 14).
TEAM_ACTIONS = {"read": frozenset({"pull"}), "write": frozenset({"pull", "push"}),
                "admin": ACTIONS}
#: What an access token of each permission allows.
TOKEN_ACTIONS = {"read": frozenset({"pull"}), "write": frozenset({"pull", "push"}),
                 "delete": ACTIONS}
USERS = ["alice", "bob", "olive", "tess", "ci-bot"]
ORGS = ["acme", "globex"]
#: Repository paths: the orgs' repositories (one nested), a user's, a namespace whose name
#: extends an org's, a single-component one.
PATHS = ["acme/app", "acme/other", "acme/sub/app", "globex/app", "alice/app", "bob/app",
         "acmex/app", "httpd"]
TARGETS = [*PATHS, "acme/*", "globex/*", "alice/*", "bob/*", "acmex/*"]
REQUESTED = ["pull", "push", "delete", "*", "bogus"]


@dataclass(frozen=True)
class Team:
    org: str
    members: frozenset[str]
    permissions: tuple[tuple[str, str], ...]  # (target in the org, read|write|admin)


@dataclass(frozen=True)
class Token:
    permission: str  # read, write, delete
    targets: tuple[str, ...]  # empty: every repository

    @property
    def actions(self) -> frozenset[str]:
        return TOKEN_ACTIONS[self.permission]


@dataclass(frozen=True)
class Caller:
    name: str | None  # None: anonymous
    admin: bool = False
    disabled: bool = False
    token: Token | None = None


@dataclass(frozen=True)
class OrgWorld:
    owners: dict[str, frozenset[str]]  # org -> its owners
    teams: tuple[Team, ...]
    grants: tuple[tuple[str, str, frozenset[str]], ...]  # (user, target, actions)
    public: frozenset[str]
    caller: Caller


def reaches(target: str, path: str) -> bool:
    """``target`` (a repository, or ``ns/*``: every repository below ``ns``) names ``path``."""
    wanted, have = target.split("/"), path.split("/")
    if wanted[-1] != "*":
        return wanted == have
    return len(have) >= len(wanted) and have[:len(wanted) - 1] == wanted[:-1]


def namespace(path: str) -> str | None:
    parts = path.split("/")
    return parts[0] if len(parts) > 1 else None


def owns(world: OrgWorld, path: str) -> bool:
    """An admin; the user of the namespace; an owner of the organisation of the namespace."""
    caller, space = world.caller, namespace(path)
    if caller.admin:
        return True
    if caller.name is None or space is None:
        return False
    return caller.name == space or caller.name in world.owners.get(space, frozenset())


def teams_of(world: OrgWorld) -> list[Team]:
    name = world.caller.name
    return [team for team in world.teams if name is not None and name in team.members]


def held(world: OrgWorld, path: str) -> frozenset[str]:
    """Repository actions the caller holds on ``path``."""
    caller = world.caller
    if caller.disabled:
        return frozenset()
    if owns(world, path):
        actions = set(ACTIONS)
    else:
        actions = {"pull"} if path in world.public else set()
        if caller.name is not None:
            for user, target, given in world.grants:
                if user == caller.name and reaches(target, path):
                    actions |= given & ACTIONS
            for team in teams_of(world):
                for target, permission in team.permissions:
                    if reaches(target, path):
                        actions |= TEAM_ACTIONS[permission]
    token = caller.token
    if token is not None:
        in_reach = not token.targets or any(reaches(t, path) for t in token.targets)
        actions = actions & token.actions if in_reach else set()
    return frozenset(actions)


def granted(world: OrgWorld, path: str, requested: frozenset[str]) -> frozenset[str]:
    """Requested ∩ held; ``*`` is answered with ``*`` for every action, else what is held."""
    holds = held(world, path)
    if "*" in requested:
        return frozenset({"*"}) if holds == ACTIONS else holds
    return requested & holds


def team_admin(world: OrgWorld, path: str) -> bool:
    return any(permission == "admin" and reaches(target, path)
               for team in teams_of(world) for target, permission in team.permissions)


def may_manage_repository(world: OrgWorld, path: str) -> bool:
    """Visibility, record, grants: namespace owner (user, org owner), a team admin on it, an
    admin; enabled and logged in with a password."""
    caller = world.caller
    if caller.name is None or caller.disabled or caller.token is not None:
        return False
    return owns(world, path) or team_admin(world, path)


def may_create_repository(world: OrgWorld, path: str, default_visibility: bool) -> bool:
    """With a password: whoever manages it; with a token: as a push would (the token pushes
    there, the caller manages it, the default visibility)."""
    caller = world.caller
    if caller.token is None:
        return may_manage_repository(world, path)
    return (default_visibility and (owns(world, path) or team_admin(world, path))
            and "push" in held(world, path))


#: Callers: anonymous now and then, else a user, one in five an admin, one in five disabled,
#: one in three logged in with an access token.
callers = st.builds(
    Caller,
    st.sampled_from([None, *USERS]),
    st.sampled_from([False, False, False, False, True]),
    st.sampled_from([False, False, False, False, True]),
    st.one_of(st.none(), st.none(), st.builds(
        Token, st.sampled_from(sorted(TOKEN_ACTIONS)),
        st.lists(st.sampled_from(TARGETS), max_size=2).map(tuple))),
).map(lambda caller: Caller(None) if caller.name is None else caller)


@st.composite
def teams(draw: st.DrawFn, caller: Caller) -> Team:
    """A team of ``acme`` (most often) or ``globex``, the caller in it two times in three."""
    org = draw(st.sampled_from(["acme", "acme", "globex"]))
    targets = [f"{org}/*", f"{org}/*", f"{org}/app", f"{org}/other", f"{org}/sub/app"]
    permissions = draw(st.lists(
        st.tuples(st.sampled_from(targets), st.sampled_from(sorted(TEAM_ACTIONS))),
        min_size=1, max_size=3, unique_by=lambda p: p[0]))
    members = set(draw(st.frozensets(st.sampled_from(USERS), max_size=2)))
    if caller.name is not None and draw(st.sampled_from([True, True, False])):
        members.add(caller.name)
    return Team(org, frozenset(members), tuple(permissions))


@st.composite
def worlds(draw: st.DrawFn) -> OrgWorld:
    caller = draw(callers)
    owners = draw(st.fixed_dictionaries(
        {org: st.frozensets(st.sampled_from(USERS), min_size=1, max_size=1) for org in ORGS}))
    grants = draw(st.lists(st.tuples(
        st.sampled_from(USERS), st.sampled_from(TARGETS),
        st.frozensets(st.sampled_from(sorted(ACTIONS)), min_size=1)), max_size=4))
    teamed = draw(st.lists(teams(caller), min_size=1, max_size=4))
    return OrgWorld(owners, tuple(teamed), tuple(grants),
                    draw(st.frozensets(st.sampled_from(PATHS))), caller)


#: The path asked about: an organisation's repository more often than not.
paths = st.sampled_from([*PATHS, "acme/app", "acme/app", "acme/other", "acme/sub/app"])

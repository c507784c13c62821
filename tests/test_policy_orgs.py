"""Who gets what in an organisation (issue 14): truth tables over role × action × visibility on
``acme/app`` and ``acme/other``, the management verdicts per role, and two properties: the
answer is always requested ∩ what the sources give, and it agrees with an independent model
(tests/org_policy_model.py) in random worlds.
"""

from collections.abc import Callable

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from authsvc.core.policy import (
    ANONYMOUS,
    Grant,
    RepoFacts,
    Subject,
    TeamGrant,
    TokenLimit,
    granted_actions,
    held_actions,
    may_create_organization,
    may_create_repository,
    may_manage_namespace,
    may_manage_organization,
    may_manage_repository,
    may_read_grants,
    may_see_organization,
)
from authsvc.core.scopes import Scope
from tests import org_policy_model as model

ALL3 = {"pull", "push", "delete"}
P, PP = {"pull"}, {"pull", "push"}
NONE: set[str] = set()
APP, OTHER = "acme/app", "acme/other"


def limit(permission: str, *targets: str) -> TokenLimit:
    return TokenLimit(frozenset(model.TOKEN_ACTIONS[permission]), targets)


class Role:
    """A caller and what the store says about them in ``acme``: owner flag, their teams'
    permissions, their grants, whether they are in one of its teams."""

    def __init__(self, subject: Subject, *, owner: bool = False,
                 teams: tuple[TeamGrant, ...] = (), grants: tuple[Grant, ...] = (),
                 member: bool = False) -> None:
        self.subject, self.owner, self.teams, self.grants = subject, owner, teams, grants
        self.member = member or bool(teams)

    def facts(self, path: str, public: bool = False) -> RepoFacts:
        return RepoFacts(path, public=public, grants=self.grants, exists=True,
                         org_owner=self.owner, team_grants=self.teams)


def team(target: str, permission: str, name: str = "tess",
         token: TokenLimit | None = None) -> Role:
    return Role(Subject(name, limit=token), teams=(TeamGrant(target, permission),))


def owner(token: TokenLimit | None = None, disabled: bool = False) -> Role:
    return Role(Subject("olive", disabled=disabled, limit=token), owner=True)


ROLES: dict[str, Role] = {
    "admin": Role(Subject("root", admin=True)),
    "org owner": owner(),
    "team read on acme/*": team("acme/*", "read"),
    "team write on acme/*": team("acme/*", "write"),
    "team admin on acme/*": team("acme/*", "admin"),
    "team read on acme/app": team(APP, "read"),
    "team write on acme/app": team(APP, "write"),
    "team admin on acme/app": team(APP, "admin"),
    "grant pull,push on acme/app": Role(Subject("gus"),
                                        grants=(Grant(APP, frozenset(PP)),)),
    "stranger": Role(Subject("sam")),
    "anonymous": Role(ANONYMOUS),
    "disabled owner": owner(disabled=True),
    "owner, read token": owner(limit("read")),
    "owner, write token": owner(limit("write")),
    "owner, delete token": owner(limit("delete")),
    "owner, delete token for acme/app": owner(limit("delete", APP)),
    "owner, delete token for acme/*": owner(limit("delete", "acme/*")),
    "owner, delete token for bob/*": owner(limit("delete", "bob/*")),
    "team write on acme/*, read token": team("acme/*", "write", token=limit("read")),
    "team write on acme/*, write token": team("acme/*", "write", token=limit("write")),
    "team write on acme/*, delete token": team("acme/*", "write", token=limit("delete")),
    "team write on acme/*, write token for acme/app": team("acme/*", "write",
                                                            token=limit("write", APP)),
    "robot in team write on acme/*, write token": team("acme/*", "write", name="ci-bot",
                                                        token=limit("write")),
    "team admin on acme/*, delete token": team("acme/*", "admin", token=limit("delete")),
    "admin, write token": Role(Subject("root", admin=True, limit=limit("write"))),
}

# role -> actions held on (acme/app private, acme/app public, acme/other private, acme/other public)
HELD: dict[str, tuple[set[str], set[str], set[str], set[str]]] = {
    "admin": (ALL3, ALL3, ALL3, ALL3),
    "org owner": (ALL3, ALL3, ALL3, ALL3),
    "team read on acme/*": (P, P, P, P),
    "team write on acme/*": (PP, PP, PP, PP),
    "team admin on acme/*": (ALL3, ALL3, ALL3, ALL3),
    # a permission on acme/app gives nothing on acme/other beyond public pull
    "team read on acme/app": (P, P, NONE, P),
    "team write on acme/app": (PP, PP, NONE, P),
    "team admin on acme/app": (ALL3, ALL3, NONE, P),
    "grant pull,push on acme/app": (PP, PP, NONE, P),
    "stranger": (NONE, P, NONE, P),
    "anonymous": (NONE, P, NONE, P),
    "disabled owner": (NONE, NONE, NONE, NONE),
    # a token bounds an owner: its permission, and its targets (public pull too)
    "owner, read token": (P, P, P, P),
    "owner, write token": (PP, PP, PP, PP),
    "owner, delete token": (ALL3, ALL3, ALL3, ALL3),
    "owner, delete token for acme/app": (ALL3, ALL3, NONE, NONE),
    "owner, delete token for acme/*": (ALL3, ALL3, ALL3, ALL3),
    "owner, delete token for bob/*": (NONE, NONE, NONE, NONE),
    # ... and a team member: a token never adds to the team's permission
    "team write on acme/*, read token": (P, P, P, P),
    "team write on acme/*, write token": (PP, PP, PP, PP),
    "team write on acme/*, delete token": (PP, PP, PP, PP),
    "team write on acme/*, write token for acme/app": (PP, PP, NONE, NONE),
    "robot in team write on acme/*, write token": (PP, PP, PP, PP),
    "team admin on acme/*, delete token": (ALL3, ALL3, ALL3, ALL3),
    "admin, write token": (PP, PP, PP, PP),
}
PLACES = [(APP, False), (APP, True), (OTHER, False), (OTHER, True)]
REQUESTS = ["pull", "push", "delete", "*", "pull,push", "pull,push,delete", "pull,bogus"]


def expected_grant(requested: str, held: set[str]) -> set[str]:
    """The rule written out: requested ∩ held; ``*`` answered with ``*`` for full rights."""
    wanted = {a for a in requested.split(",") if a}
    if "*" in wanted:
        return {"*"} if held == ALL3 else held
    return wanted & held


def scope(actions: str, name: str = APP) -> Scope:
    return Scope("repository", name, frozenset(a for a in actions.split(",") if a))


def test_every_role_has_a_row() -> None:
    assert set(HELD) == set(ROLES)
    assert set(VERDICTS) == set(ROLES)


@pytest.mark.parametrize("requested", REQUESTS)
@pytest.mark.parametrize(("path", "public"), PLACES,
                         ids=[f"{p}-{'public' if v else 'private'}" for p, v in PLACES])
@pytest.mark.parametrize("role", list(HELD))
def test_truth_table(role: str, path: str, public: bool, requested: str) -> None:
    held = HELD[role][PLACES.index((path, public))]
    facts = ROLES[role].facts(path, public)
    subject = ROLES[role].subject
    assert held_actions(subject, facts) == held
    assert granted_actions(subject, scope(requested, path), facts) == expected_grant(
        requested, held)


#: Each management verdict on acme (``acme/app``, ``acme/other``, the namespace ``acme/*``).
CHECKS: dict[str, Callable[[Role], bool]] = {
    "manage acme/app": lambda r: may_manage_repository(r.subject, r.facts(APP)),
    "manage acme/other": lambda r: may_manage_repository(r.subject, r.facts(OTHER)),
    "read grants on acme/app": lambda r: may_read_grants(r.subject, r.facts(APP)),
    "read grants on acme/*": lambda r: may_read_grants(r.subject, r.facts("acme/*")),
    "create acme/app, default visibility": lambda r: may_create_repository(
        r.subject, r.facts(APP), True),
    "create acme/app, other visibility": lambda r: may_create_repository(
        r.subject, r.facts(APP), False),
    "manage namespace grants of acme": lambda r: may_manage_namespace(r.subject, "acme",
                                                                      r.owner),
    "manage the org": lambda r: may_manage_organization(r.subject, r.owner),
    "see the org": lambda r: may_see_organization(r.subject, r.owner, r.member),
    "create an org, ORG_CREATORS=admins": lambda r: may_create_organization(r.subject, False),
    "create an org, ORG_CREATORS=users": lambda r: may_create_organization(r.subject, True),
}
T, F = True, False
# role -> the verdicts, in the order of CHECKS
VERDICTS: dict[str, tuple[bool, ...]] = {
    #                                    app oth rg  rg* cr  cr' ns  org see adm usr
    "admin":                            (T,  T,  T,  T,  T,  T,  T,  T,  T,  T,  T),
    "org owner":                        (T,  T,  T,  T,  T,  T,  T,  T,  T,  F,  T),
    "team read on acme/*":              (F,  F,  F,  F,  F,  F,  F,  F,  T,  F,  T),
    "team write on acme/*":             (F,  F,  F,  F,  F,  F,  F,  F,  T,  F,  T),
    # admin on acme/* manages every repository of it (and reads the acme/* grants), but
    # not the namespace grants nor the org
    "team admin on acme/*":             (T,  T,  T,  T,  T,  T,  F,  F,  T,  F,  T),
    "team read on acme/app":            (F,  F,  F,  F,  F,  F,  F,  F,  T,  F,  T),
    "team write on acme/app":           (F,  F,  F,  F,  F,  F,  F,  F,  T,  F,  T),
    "team admin on acme/app":           (T,  F,  T,  F,  T,  T,  F,  F,  T,  F,  T),
    "grant pull,push on acme/app":      (F,  F,  F,  F,  F,  F,  F,  F,  F,  F,  T),
    "stranger":                         (F,  F,  F,  F,  F,  F,  F,  F,  F,  F,  T),
    "anonymous":                        (F,  F,  F,  F,  F,  F,  F,  F,  F,  F,  F),
    "disabled owner":                   (F,  F,  F,  F,  F,  F,  F,  F,  F,  F,  F),
    # a token changes nothing but reads grants within its reach, registers where it pushes
    # (default visibility) and sees the org; it never creates one (robots log in so)
    "owner, read token":                (F,  F,  T,  T,  F,  F,  F,  F,  T,  F,  F),
    "owner, write token":               (F,  F,  T,  T,  T,  F,  F,  F,  T,  F,  F),
    "owner, delete token":              (F,  F,  T,  T,  T,  F,  F,  F,  T,  F,  F),
    "owner, delete token for acme/app": (F,  F,  T,  F,  T,  F,  F,  F,  T,  F,  F),
    "owner, delete token for acme/*":   (F,  F,  T,  T,  T,  F,  F,  F,  T,  F,  F),
    "owner, delete token for bob/*":    (F,  F,  F,  F,  F,  F,  F,  F,  T,  F,  F),
    "team write on acme/*, read token": (F,  F,  F,  F,  F,  F,  F,  F,  T,  F,  F),
    "team write on acme/*, write token": (F, F,  F,  F,  F,  F,  F,  F,  T,  F,  F),
    "team write on acme/*, delete token": (F, F, F,  F,  F,  F,  F,  F,  T,  F,  F),
    "team write on acme/*, write token for acme/app":
                                        (F,  F,  F,  F,  F,  F,  F,  F,  T,  F,  F),
    "robot in team write on acme/*, write token":
                                        (F,  F,  F,  F,  F,  F,  F,  F,  T,  F,  F),
    "team admin on acme/*, delete token": (F, F, T,  T,  T,  F,  F,  F,  T,  F,  F),
    "admin, write token":               (F,  F,  T,  T,  T,  F,  F,  F,  T,  F,  F),
}


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("role", list(VERDICTS))
def test_who_may_manage_what(role: str, check: str) -> None:
    expected = VERDICTS[role][list(CHECKS).index(check)]
    assert CHECKS[check](ROLES[role]) is expected


@pytest.mark.parametrize(
    ("subject", "facts", "requested", "granted"),
    [
        # acme/* covers nested repositories, not a namespace that merely starts with "acme"
        (Subject("tess"), RepoFacts("acme/sub/app", team_grants=(TeamGrant("acme/*", "write"),)),
         "pull,push", PP),
        (Subject("tess"), RepoFacts("acmex/app", team_grants=(TeamGrant("acme/*", "admin"),)),
         "*", NONE),
        (Subject("tess"), RepoFacts("acme/app", team_grants=(TeamGrant("globex/*", "admin"),)),
         "*", NONE),
        (Subject("tess"), RepoFacts("acme/app", team_grants=(TeamGrant("acme/app2", "admin"),)),
         "pull", NONE),
        # the sources add up: teams, grants and visibility
        (Subject("tess"), RepoFacts("acme/app", team_grants=(TeamGrant("acme/*", "read"),),
                                    grants=(Grant("acme/app", frozenset({"delete"})),)),
         "*", {"pull", "delete"}),
        (Subject("tess"), RepoFacts("acme/app", team_grants=(
            TeamGrant("acme/*", "read"), TeamGrant("acme/app", "write")),
            grants=(Grant("acme/*", frozenset({"delete"})),)), "*", {"*"}),
        (Subject("tess"), RepoFacts("acme/app", public=True,
                                    team_grants=(TeamGrant("acme/app", "read"),)),
         "pull,push", P),
        # an unknown permission gives nothing
        (Subject("tess"), RepoFacts("acme/app", team_grants=(TeamGrant("acme/*", "owner"),)),
         "pull", NONE),
        # anonymous callers have no teams, no grants and own no org, whatever the facts say
        (ANONYMOUS, RepoFacts("acme/app", team_grants=(TeamGrant("acme/*", "admin"),)),
         "pull", NONE),
        (ANONYMOUS, RepoFacts("acme/app", org_owner=True), "pull", NONE),
        (ANONYMOUS, RepoFacts("acme/app", public=True, org_owner=True), "*", P),
        # a disabled team member holds nothing, not even public pull
        (Subject("tess", disabled=True), RepoFacts(
            "acme/app", public=True, team_grants=(TeamGrant("acme/*", "admin"),)), "pull", NONE),
    ],
)
def test_notable_rows(subject: Subject, facts: RepoFacts, requested: str,
                      granted: set[str]) -> None:
    assert granted_actions(subject, scope(requested, facts.path), facts) == granted


@pytest.mark.parametrize(("owner_flag", "member", "subject", "allowed"), [
    (False, True, Subject("tess"), True),        # in a team without any permission
    (False, True, Subject("tess", disabled=True), False),
    (True, False, Subject(None), False),         # anonymous, whatever the flags
    (False, True, Subject(None), False),
    (False, False, Subject("root", admin=True, limit=limit("read")), True),
    (False, False, Subject("root", admin=True, disabled=True), False),
])
def test_who_sees_an_organisation(owner_flag: bool, member: bool, subject: Subject,
                                  allowed: bool) -> None:
    assert may_see_organization(subject, owner_flag, member) is allowed


def test_an_org_owner_manages_no_other_namespace() -> None:
    """The owner flag is about the namespace asked for; without it an org owner is a stranger
    (``may_manage_namespace`` for a user's own name still holds)."""
    olive = Subject("olive")
    assert may_manage_namespace(olive, "acme", org_owner=True) is True
    assert may_manage_namespace(olive, "acme", org_owner=False) is False
    assert may_manage_namespace(olive, "olive") is True
    assert may_manage_organization(olive, org_owner=False) is False


def test_anonymous_reads_no_grants_whatever_the_team_facts() -> None:
    """Defence in depth: held_actions ignores team facts for an anonymous caller, so must
    the management verdicts (Authorizer.facts never gives them one, a future caller might)."""
    facts = RepoFacts("acme/app", team_grants=(TeamGrant("acme/*", "admin"),))
    assert may_manage_repository(ANONYMOUS, facts) is False
    assert may_read_grants(ANONYMOUS, facts) is False


# -- property: requested ∩ what the sources give, whatever the inputs ------------------------

ACTION_WORDS = ["pull", "push", "delete", "*", "bogus"]
FACT_PATHS = ["acme/app", "acme/app", "acme/other", "acme/sub/app", "acmex/app", "olive/app",
              "httpd"]
FACT_TARGETS = [*FACT_PATHS, "acme/*", "acmex/*", "olive/*", "globex/*"]

#: Callers: mostly users without a namespace here (so that grants and teams decide), now and
#: then anonymous, an admin, disabled; one in three with an access token.
subjects = st.builds(
    Subject, st.sampled_from([None, "olive", "tess", "tess", "acme"]),
    st.sampled_from([False, False, False, True]), st.sampled_from([False, False, False, True]),
    st.one_of(st.none(), st.none(), st.builds(
        TokenLimit, st.frozensets(st.sampled_from(ACTION_WORDS)),
        st.lists(st.sampled_from(FACT_TARGETS), max_size=2).map(tuple))),
).map(lambda s: ANONYMOUS if s.name is None else s)
#: Facts as the store may give them: any grants and team permissions (the policy picks those
#: that reach the path); the owner flag only where an organisation can hold the path (a
#: single-component name lies in no namespace: ``Authorizer.facts`` never sets it there).
facts_strategy = st.builds(
    RepoFacts,
    st.sampled_from(FACT_PATHS),
    public=st.booleans(),
    grants=st.lists(st.builds(Grant, st.sampled_from(FACT_TARGETS),
                              st.frozensets(st.sampled_from(ACTION_WORDS))),
                    max_size=3).map(tuple),
    org_owner=st.sampled_from([False, False, False, True]),
    team_grants=st.lists(st.builds(TeamGrant, st.sampled_from([*FACT_TARGETS, "acme/*"]),
                                   st.sampled_from(["read", "write", "admin", "owner"])),
                         max_size=3).map(tuple),
).filter(lambda facts: "/" in facts.path or not facts.org_owner)


def given_by_sources(subject: Subject, facts: RepoFacts) -> set[str]:
    """The union of what each source gives (before a token's limit): ownership (admin, the
    user's namespace, the org's owners) everything; public pull; grants and teams what they
    say on the paths they reach."""
    space = model.namespace(facts.path)
    named = subject.name is not None
    if subject.admin or (named and space is not None and (space == subject.name
                                                            or facts.org_owner)):
        return set(ALL3)
    given = {"pull"} if facts.public else set()
    if named:
        for grant in facts.grants:
            if model.reaches(grant.target, facts.path):
                given |= grant.actions & ALL3
        for team_grant in facts.team_grants:
            if model.reaches(team_grant.target, facts.path):
                given |= model.TEAM_ACTIONS.get(team_grant.permission, frozenset())
    return given


@settings(database=None, max_examples=400, deadline=None)
@given(subject=subjects, facts=facts_strategy,
       requested=st.frozensets(st.sampled_from(ACTION_WORDS)))
def test_granted_is_requested_and_allowed(subject: Subject, facts: RepoFacts,
                                         requested: frozenset[str]) -> None:
    granted = granted_actions(subject, Scope("repository", facts.path, requested), facts)
    asked = set(requested) | (ALL3 if "*" in requested else set())
    allowed = set() if subject.disabled else given_by_sources(subject, facts)
    if subject.limit is not None:
        in_reach = not subject.limit.targets or any(
            model.reaches(t, facts.path) for t in subject.limit.targets)
        allowed &= subject.limit.actions if in_reach else set()
    assert granted <= asked
    assert granted - {"*"} <= allowed
    if "*" in granted:
        assert allowed == ALL3
    # and nothing less: everything asked for and allowed is granted
    assert granted == ({"*"} if "*" in requested and allowed == ALL3 else asked & allowed)
    assert held_actions(subject, facts) == allowed


# -- the model: random worlds of orgs, teams, grants, tokens ---------------------------------

def subject_of(caller: model.Caller) -> Subject:
    token = caller.token
    return Subject(caller.name, admin=caller.admin, disabled=caller.disabled,
                   limit=None if token is None else TokenLimit(token.actions, token.targets))


def facts_of(world: model.OrgWorld, path: str) -> RepoFacts:
    """What the store tells about ``path`` for the caller: every grant of theirs and every
    permission of their teams (the policy must pick those that reach ``path``), and whether
    they own the org of its namespace."""
    name = world.caller.name
    space, slash, _ = path.partition("/")
    return RepoFacts(
        path, public=path in world.public, exists=True,
        grants=tuple(Grant(t, a) for user, t, a in world.grants if user == name),
        org_owner=bool(slash) and name in world.owners.get(space, frozenset()),
        team_grants=tuple(TeamGrant(t, p) for team in world.teams
                          if name in team.members for t, p in team.permissions))


@settings(database=None, max_examples=400, deadline=None)
@given(world=model.worlds(), path=model.paths,
       requested=st.frozensets(st.sampled_from(model.REQUESTED)), default=st.booleans())
def test_policy_agrees_with_the_model(world: model.OrgWorld, path: str,
                                      requested: frozenset[str], default: bool) -> None:
    subject, facts = subject_of(world.caller), facts_of(world, path)
    note(f"subject={subject} facts={facts}")
    assert held_actions(subject, facts) == model.held(world, path)
    assert granted_actions(subject, Scope("repository", path, requested), facts) == (
        model.granted(world, path, requested))
    assert may_manage_repository(subject, facts) is model.may_manage_repository(world, path)
    assert may_create_repository(subject, facts, default) is model.may_create_repository(
        world, path, default)


def test_the_model_knows_the_corners() -> None:
    """The model itself, on worlds written out: a team's repository permission stays on its
    repository, a token bounds an org owner, a robot member pushes with its token."""
    acme = {"acme": frozenset({"olive"}), "globex": frozenset({"bob"})}
    ci = model.Team("acme", frozenset({"ci-bot", "tess"}), (("acme/app", "write"),))
    ops = model.Team("acme", frozenset({"tess"}), (("acme/*", "admin"),))

    def world(caller: model.Caller, *teams: model.Team) -> model.OrgWorld:
        return model.OrgWorld(acme, teams, (), frozenset({"acme/other"}), caller)

    robot = model.Caller("ci-bot", token=model.Token("write", ()))
    assert model.held(world(robot, ci), "acme/app") == PP
    assert model.held(world(robot, ci), "acme/other") == P
    assert model.held(world(robot, ci), "acme/sub/app") == NONE
    assert not model.may_manage_repository(world(model.Caller("tess"), ci), "acme/app")
    assert model.may_manage_repository(world(model.Caller("tess"), ci, ops), "acme/sub/app")
    olive = model.Caller("olive", token=model.Token("read", ("acme/app",)))
    assert model.held(world(olive), "acme/app") == P
    assert model.held(world(olive), "acme/other") == NONE
    assert model.held(world(model.Caller("bob")), "globex/app") == ALL3
    assert model.held(world(model.Caller("bob")), "acme/app") == NONE
    assert model.granted(world(model.Caller("tess"), ops), "acmex/app", frozenset({"*"})) == (
        NONE)


def test_an_owner_flag_on_a_single_component_name_gives_nothing() -> None:
    """Single-component repositories belong to admins: an organisation's ownership (which
    only ever covers ``org/…``) cannot reach them, whatever facts a caller passes."""
    facts = RepoFacts("httpd", org_owner=True)
    assert held_actions(Subject("olive"), facts) == frozenset()
    assert may_manage_repository(Subject("olive"), facts) is False

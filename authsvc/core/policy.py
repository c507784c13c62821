"""Who may do what: a pure function of the subject, the requested scope and the repository facts.

A repository name is the registry's name, exactly as the registry sees it; nothing is stripped
from it, so ``john.smith/app`` lies in the namespace ``john.smith``.

Rules, in the order they are applied:

* a name that is not a repository path (``myreg:5000/alice/x``: the scope grammar allows a
  ``host[:port]/`` prefix, the registry cannot hold such a name) is granted nothing, to anyone,
  admins included: it lies in no user namespace and no repository record can have it;
* a disabled user holds nothing;
* an admin holds every repository action;
* the catalog (``registry:catalog``): every authenticated, enabled caller holds ``search``,
  access-token callers too (Docker asks for it before ``/v1/search``, which authsvc answers with
  what the caller may pull; the registry's ``/v2/_catalog`` needs ``*``, so ``search`` opens
  nothing there); ``*`` (the registry's unfiltered ``/v2/_catalog``) only an admin who did not
  log in with an access token; anonymous callers hold nothing on it;
* a user holds every action in the namespace of their own name: the first component of a name
  of two or more components (``alice/…``); single-component names (``httpd``) have no user
  owner: only admins write them;
* an organisation's owners hold every action in the organisation's namespace (``acme/…``), as a
  user does in their own;
* anyone, anonymous included, may ``pull`` a public repository;
* explicit grants add actions on one repository or a whole namespace (``alice/*``);
* a team's permission adds its actions for the team's members on the organisation's repository
  or whole namespace it is given on: ``read`` pulls, ``write`` pulls and pushes, ``admin``
  pulls, pushes and deletes (and manages those repositories, see below);
* a caller using an access token holds at most what the token allows, on the repositories it
  names, and never ``registry:catalog:*``.

Anything else is denied. The result is always the requested actions ∩ the held ones; a denial is
an empty set, never an exception.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from authsvc.core.scopes import Scope
from authsvc.errors import InvalidRequest

PULL, PUSH, DELETE, ALL = "pull", "push", "delete", "*"
REPOSITORY_ACTIONS = frozenset({PULL, PUSH, DELETE})
CATALOG = ("registry", "catalog")
#: The catalog action Docker asks for before ``/v1/search`` (the search filters its results).
SEARCH = "search"


@dataclass(frozen=True)
class TokenLimit:
    """What an access token allows: ``actions`` on ``targets`` (repositories or ``ns/*``),
    every repository when ``targets`` is empty."""

    actions: frozenset[str]
    targets: tuple[str, ...] = ()

    def allows(self, path: str) -> bool:
        return not self.targets or any(Grant(t, self.actions).covers(path) for t in self.targets)


@dataclass(frozen=True)
class Subject:
    """The caller: ``name`` is None for an anonymous request; ``limit`` is set when the caller
    authenticated with an access token instead of a password."""

    name: str | None
    admin: bool = False
    disabled: bool = False
    limit: TokenLimit | None = None

    @property
    def anonymous(self) -> bool:
        return self.name is None


ANONYMOUS = Subject(None)


@dataclass(frozen=True)
class Grant:
    """Actions given to a user on ``target``: a repository path or a namespace ``ns/*``."""

    target: str
    actions: frozenset[str]

    def covers(self, path: str) -> bool:
        if self.target.endswith("/*"):
            return path.startswith(self.target[:-1])
        return self.target == path


#: A team's permissions and the repository actions each holds.
READ, WRITE, ADMIN = "read", "write", "admin"
TEAM_PERMISSIONS: dict[str, frozenset[str]] = {
    READ: frozenset({PULL}), WRITE: frozenset({PULL, PUSH}), ADMIN: REPOSITORY_ACTIONS}


@dataclass(frozen=True)
class TeamGrant:
    """A team's ``permission`` on ``target`` (a repository of its organisation or the whole
    namespace ``org/*``), as held by one of its members."""

    target: str
    permission: str

    def covers(self, path: str) -> bool:
        return Grant(self.target, self.actions).covers(path)

    @property
    def actions(self) -> frozenset[str]:
        return TEAM_PERMISSIONS.get(self.permission, frozenset())


@dataclass(frozen=True)
class RepoFacts:
    """What the store knows about one repository path, as seen by one subject."""

    path: str
    public: bool = False
    grants: tuple[Grant, ...] = field(default_factory=tuple)
    #: Registered in the store (a pushed repository is registered on its first push token).
    exists: bool = False
    #: The subject is an owner of the organisation whose namespace holds ``path``.
    org_owner: bool = False
    #: The permissions of the subject's teams that may cover ``path``.
    team_grants: tuple[TeamGrant, ...] = field(default_factory=tuple)


def namespace_of(path: str) -> str | None:
    """The user namespace that owns ``path``; None for single-component (admin-owned) names."""
    head, sep, _ = path.partition("/")
    return head if sep else None


def owns(subject: Subject, path: str) -> bool:
    """Admins own every repository, users the ones in their namespace: grants and visibility
    add nothing to what an owner holds (an access token's limit still applies)."""
    return subject.admin or (subject.name is not None and namespace_of(path) == subject.name)


def owns_repository(subject: Subject, repo: RepoFacts) -> bool:
    """``owns``, or an owner of the organisation that holds the repository."""
    return owns(subject, repo.path) or (subject.name is not None and repo.org_owner
                                        and namespace_of(repo.path) is not None)


def held_actions(subject: Subject, repo: RepoFacts) -> frozenset[str]:
    """Every concrete repository action ``subject`` holds on ``repo``."""
    if subject.disabled:
        return frozenset()
    if owns_repository(subject, repo):
        held = set(REPOSITORY_ACTIONS)
    else:
        held = {PULL} if repo.public else set()
        if subject.name is not None:
            given: tuple[Grant | TeamGrant, ...] = (*repo.grants, *repo.team_grants)
            for grant in given:
                if grant.covers(repo.path):
                    held |= grant.actions & REPOSITORY_ACTIONS
    if subject.limit is not None:
        held &= subject.limit.actions if subject.limit.allows(repo.path) else set()
    return frozenset(held)


def catalog_actions(subject: Subject) -> frozenset[str]:
    """What ``subject`` holds on ``registry:catalog``: nothing when anonymous or disabled,
    ``search`` for every other caller, and ``*`` besides for an admin without an access
    token."""
    if subject.anonymous or subject.disabled:
        return frozenset()
    if subject.admin and subject.limit is None:
        return frozenset({SEARCH, ALL})
    return frozenset({SEARCH})


def granted_actions(subject: Subject, scope: Scope, repo: RepoFacts | None) -> frozenset[str]:
    """The actions to put in the token for ``scope``: requested ∩ held.

    On a repository a requested ``*`` stands for every action; it is answered with the concrete
    actions held, and with ``*`` itself only when the subject holds them all. On the catalog
    ``*`` and ``search`` are two actions, each granted as asked (``catalog_actions``).
    """
    if (scope.type, scope.name) == CATALOG:
        return scope.actions & catalog_actions(subject)
    if repo is None or not scope.is_repository_path:
        return frozenset()
    held = held_actions(subject, repo)
    granted = scope.actions & held
    if ALL in scope.actions:
        granted = frozenset({ALL}) if held >= REPOSITORY_ACTIONS else held
    return granted


def parse_actions(text: str | Iterable[str]) -> frozenset[str]:
    """Read ``pull,push`` (or a list) into a set of repository actions; ``*`` means all three.

    Raises InvalidRequest naming the first unknown action.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    actions = {a.strip() for a in items if a.strip()}
    if ALL in actions:
        return REPOSITORY_ACTIONS
    unknown = sorted(actions - REPOSITORY_ACTIONS)
    if unknown:
        raise InvalidRequest(f"unknown action {unknown[0]!r}: use pull, push, delete or *")
    if not actions:
        raise InvalidRequest("no action given: use pull, push, delete or *")
    return frozenset(actions)


# -- who may change what through the admin API and the self-service routes -------------------
#
# An access token's permission bounds what it may change as well as what it may pull and push.
# Managing grants (on a repository or a namespace), changing visibility and deleting repository
# records need a password login: no access-token permission allows them, an admin's token
# neither. A token that may push to a path may register that repository as the push would (with
# the default visibility). Grants are read by the owner or an admin, a token within its reach.

def password_login(actor: Subject) -> bool:
    """True for an enabled user who logged in with a password, not an access token."""
    return actor.name is not None and not actor.disabled and actor.limit is None


def may_manage_user(actor: Subject, username: str) -> bool:
    """Admins manage every user; a user manages their own password and tokens.

    Credentials (passwords, tokens) are changed only by someone who logged in with a password:
    an access token cannot mint itself a broader successor.
    """
    return password_login(actor) and (actor.admin or actor.name == username)


def may_manage_namespace(actor: Subject, namespace: str, org_owner: bool = False) -> bool:
    """Set and revoke grants on ``namespace/*``: the user of that name, an owner of the
    organisation of that name (``org_owner``) or an admin, logged in with a password."""
    return password_login(actor) and (actor.admin or actor.name == namespace or org_owner)


def manages(actor: Subject, repo: RepoFacts) -> bool:
    """Whether ``actor`` (whatever their login) owns ``repo`` or holds a team's ``admin`` on
    it: who may change it when logged in with a password."""
    return owns_repository(actor, repo) or (actor.name is not None and any(
        team.permission == ADMIN and team.covers(repo.path) for team in repo.team_grants))


def may_manage_repository(actor: Subject, repo: RepoFacts) -> bool:
    """Change visibility, delete the record, set and revoke grants: the namespace owner (a
    user, an organisation's owner), a member of a team with ``admin`` on it, or an admin
    (single-component repositories belong to admins), logged in with a password."""
    return password_login(actor) and manages(actor, repo)


def may_create_repository(actor: Subject, repo: RepoFacts, default_visibility: bool) -> bool:
    """Register the repository ``repo``: whoever may manage it; with an access token, only as a
    push would, so only for whoever manages it when the token may push there, and when the
    repository gets the default visibility (``default_visibility``)."""
    if actor.limit is None:
        return may_manage_repository(actor, repo)
    return default_visibility and manages(actor, repo) and PUSH in held_actions(actor, repo)


def may_read_grants(actor: Subject, target: RepoFacts) -> bool:
    """List the grants on ``target`` (a repository path or ``ns/*``): whoever manages it; with
    an access token only on a target the token reaches (every permission pulls)."""
    if actor.disabled or not manages(actor, target):
        return False
    return actor.limit is None or actor.limit.allows(target.path)


# -- organisations and their teams ----------------------------------------------------------

def may_create_organization(actor: Subject, users_may: bool) -> bool:
    """Create an organisation: an admin, or any user when the setting allows (``users_may``),
    logged in with a password; robots never."""
    return password_login(actor) and (actor.admin or users_may)


def may_manage_organization(actor: Subject, org_owner: bool) -> bool:
    """Change an organisation (its owners, teams, members and team permissions) or delete it:
    its owners (``org_owner``) and admins, logged in with a password."""
    return password_login(actor) and (actor.admin or org_owner)


def may_see_organization(actor: Subject, org_owner: bool, member: bool) -> bool:
    """See an organisation's owners, teams and members: its owners, its teams' members, and
    admins."""
    return not actor.disabled and actor.name is not None and (actor.admin or org_owner or member)

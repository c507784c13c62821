"""Who may do what: a pure function of the subject, the requested scope and the repository facts.

Rules, in the order they are applied:

* a disabled user holds nothing;
* an admin holds every repository action and ``registry:catalog:*`` (nobody else gets catalog);
* a user holds every action in the namespace of their own name (``alice/…``);
  single-component names (``httpd``) have no user owner: only admins write them;
* anyone, anonymous included, may ``pull`` a public repository;
* explicit grants add actions on one repository or a whole namespace (``alice/*``);
* a caller using an access token holds at most what the token allows, on the repositories it
  names, and never the catalog.

Anything else is denied. The result is always the requested actions ∩ the held ones; a denial is
an empty set, never an exception.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from authsvc.errors import InvalidRequest
from authsvc.scopes import Scope

PULL, PUSH, DELETE, ALL = "pull", "push", "delete", "*"
REPOSITORY_ACTIONS = frozenset({PULL, PUSH, DELETE})
CATALOG = ("registry", "catalog")


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


@dataclass(frozen=True)
class RepoFacts:
    """What the store knows about one repository path, as seen by one subject."""

    path: str
    public: bool = False
    grants: tuple[Grant, ...] = field(default_factory=tuple)
    #: Registered in the store (a pushed repository is registered on its first push token).
    exists: bool = False


def namespace_of(path: str) -> str | None:
    """The user namespace that owns ``path``; None for single-component (admin-owned) names."""
    head, sep, _ = path.partition("/")
    return head if sep else None


def owns(subject: Subject, path: str) -> bool:
    """Admins own every repository, users the ones in their namespace: grants and visibility
    add nothing to what an owner holds (an access token's limit still applies)."""
    return subject.admin or (subject.name is not None and namespace_of(path) == subject.name)


def held_actions(subject: Subject, repo: RepoFacts) -> frozenset[str]:
    """Every concrete repository action ``subject`` holds on ``repo``."""
    if subject.disabled:
        return frozenset()
    if owns(subject, repo.path):
        held = set(REPOSITORY_ACTIONS)
    else:
        held = {PULL} if repo.public else set()
        if subject.name is not None:
            for grant in repo.grants:
                if grant.covers(repo.path):
                    held |= grant.actions & REPOSITORY_ACTIONS
    if subject.limit is not None:
        held &= subject.limit.actions if subject.limit.allows(repo.path) else set()
    return frozenset(held)


def granted_actions(subject: Subject, scope: Scope, repo: RepoFacts | None) -> frozenset[str]:
    """The actions to put in the token for ``scope``: requested ∩ held.

    A requested ``*`` stands for every action; it is answered with the concrete actions held, and
    with ``*`` itself only when the subject holds them all.
    """
    if (scope.type, scope.name) == CATALOG:
        allowed = subject.admin and not subject.disabled and subject.limit is None
        return scope.actions & {ALL} if allowed else frozenset()
    if scope.type != "repository" or repo is None:
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

def may_manage_user(actor: Subject, username: str) -> bool:
    """Admins manage every user; a user manages their own password and tokens.

    Credentials (passwords, tokens) are changed only by someone who logged in with a password:
    an access token cannot mint itself a broader successor.
    """
    if actor.disabled or actor.limit is not None:
        return False
    return actor.admin or actor.name == username


def may_manage_namespace(actor: Subject, namespace: str) -> bool:
    """Admins everywhere; a user in the namespace of their name; a read-only token nowhere."""
    if actor.disabled or (actor.limit is not None and PUSH not in actor.limit.actions):
        return False
    if actor.limit is not None and not actor.limit.allows(f"{namespace}/"):
        return False
    return actor.admin or actor.name == namespace


def may_manage_repository(actor: Subject, path: str) -> bool:
    """Create, delete, change visibility and grants: the namespace owner or an admin.

    Single-component repositories belong to admins.
    """
    if actor.disabled or (actor.limit is not None and PUSH not in actor.limit.actions):
        return False
    if actor.limit is not None and not actor.limit.allows(path):
        return False
    namespace = namespace_of(path)
    return actor.admin or (namespace is not None and namespace == actor.name)

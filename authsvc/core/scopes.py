"""The scope grammar of the distribution token protocol (``docs/spec/auth/scope.md``). Pure.

A scope reads ``type[(class)]:name:action[,action…]``. The name may carry a ``host:port`` prefix,
so the type is read from the left, the actions from the *last* ``:`` and everything between is
the name. Clients send several scopes as repeated parameters and as space-separated lists.

A name is the registry's name, exactly as the registry sees it: nothing is ever stripped from
it. A name with a ``host[:port]/`` prefix that is no repository path (``myreg:5000/alice/x``)
parses, but it is just a name that no repository can have (``Scope.is_repository_path``).
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache

from authsvc.errors import InvalidName, InvalidScope

#: Most scopes one token request may carry; real clients send one to three.
MAX_SCOPES = 64
#: distribution's ``NameTotalLengthMax``.
MAX_NAME_LENGTH = 255

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"

_COMPONENT_RE = re.compile(_PATH_COMPONENT)
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_PATH_RE = re.compile(_PATH)
#: A repository path behind a registry host: the host is everything before the first ``/``.
_HOSTED_RE = re.compile(rf"(?P<host>{_DOMAIN})/{_PATH}")
_TYPE_RE = re.compile(r"([a-z0-9]+)(?:\(([a-z0-9]+)\))?")
_ACTION_RE = re.compile(r"(?:\*|[a-z][a-z-]*)")


@dataclass(frozen=True)
class Scope:
    """One requested (or granted) resource: ``type``, ``name`` and a set of actions.

    ``name`` is kept exactly as requested: it is the name the registry asked for and the one
    every rule is applied to.
    """

    type: str
    name: str
    actions: frozenset[str]
    resource_class: str | None = None

    @cached_property
    def is_repository_path(self) -> bool:
        """True for a repository scope whose name the registry can hold: a repository path
        (``alice/x``, ``john.smith/x``), not one behind a ``host:port/`` prefix. Computed once
        per Scope (parsed scopes are remembered)."""
        return self.type == "repository" and is_valid_path(self.name)

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


def is_valid_component(name: str) -> bool:
    """True when ``name`` is one path component: a user name, a namespace."""
    return len(name) <= MAX_NAME_LENGTH and _COMPONENT_RE.fullmatch(name) is not None


def is_valid_path(path: str) -> bool:
    """True when ``path`` is a repository path (lower-case components, ≤ 255 characters)."""
    return len(path) <= MAX_NAME_LENGTH and _PATH_RE.fullmatch(path) is not None


def _is_hosted_path(name: str) -> bool:
    """``host[:port]/path`` where the host is told apart as docker does: it has a ``.`` or a
    ``:`` (or is an IPv6 literal); ``Alice/x`` is no host and no path."""
    match = _HOSTED_RE.fullmatch(name)
    return match is not None and any(c in match.group("host") for c in ".:[")


def validate_repository_name(name: str) -> str:
    """Return ``name`` if the scope grammar allows it: a repository path, optionally behind a
    ``host[:port]/`` (PROTOCOL §1.5). Raises InvalidName otherwise.

    Allowed is not held: a name that is no repository path is granted nothing.
    """
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"repository name longer than {MAX_NAME_LENGTH} characters")
    if _PATH_RE.fullmatch(name) is None and not _is_hosted_path(name):
        raise InvalidName(
            f"invalid repository name {name!r}: use lower-case letters, digits and "
            "separators (. _ __ -) in components joined by /"
        )
    return name


@lru_cache(maxsize=4096)
def parse_scope(text: str) -> Scope:
    """Parse one ``type[(class)]:name:actions`` string. Raises InvalidScope when malformed.

    Remembered (Scope is immutable): clients ask for the same few scopes over and over.
    """
    type_part, sep, rest = text.partition(":")
    name, sep2, action_part = rest.rpartition(":")
    if not sep or not sep2 or not name:
        raise InvalidScope(f"malformed scope {text[:300]!r}: expected type:name:actions")
    match = _TYPE_RE.fullmatch(type_part)
    if match is None:
        raise InvalidScope(f"malformed resource type in scope {text[:300]!r}")
    actions = frozenset(a for a in action_part.split(",") if a)
    bad = sorted(a for a in actions if _ACTION_RE.fullmatch(a) is None)
    if bad:
        raise InvalidScope(f"malformed action {bad[0][:50]!r} in scope {text[:300]!r}")
    resource_type, resource_class = match.group(1), match.group(2)
    try:
        if resource_type == "repository":
            validate_repository_name(name)
        elif len(name) > MAX_NAME_LENGTH or any(c.isspace() for c in name):
            raise InvalidName(f"invalid resource name {name[:300]!r}")
    except InvalidName as e:
        raise InvalidScope(e.message) from e
    return Scope(resource_type, name, actions, resource_class)


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    """Parse repeated ``scope`` values, each possibly a space-separated list.

    Scopes naming the same (type, name) are merged into one with the union of their actions,
    keeping the order in which resources first appear.
    """
    merged: dict[tuple[str, str], Scope] = {}
    for value in values:
        for text in value.split():
            scope = parse_scope(text)
            key = (scope.type, scope.name)
            if key in merged:
                old = merged[key]
                scope = Scope(scope.type, scope.name, old.actions | scope.actions,
                              old.resource_class)
            elif len(merged) >= MAX_SCOPES:
                raise InvalidScope(f"too many scopes: at most {MAX_SCOPES} per request")
            merged[key] = scope
    return list(merged.values())

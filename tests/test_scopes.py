"""The scope grammar (PROTOCOL §1.5): what parses, into what, and what is refused."""

import pytest

from authsvc.core.scopes import (
    MAX_NAME_LENGTH,
    MAX_SCOPES,
    Scope,
    is_valid_path,
    parse_scope,
    parse_scopes,
    validate_repository_name,
)
from authsvc.errors import InvalidName, InvalidScope

NAME_255 = "a" * 127 + "/" + "b" * 127
NAME_256 = "a" * 128 + "/" + "b" * 127


# text -> (type, name, actions, resource_class, is_repository_path)
VALID = [
    ("repository:samalba/my-app:pull,push",
     ("repository", "samalba/my-app", {"pull", "push"}, None, True)),
    ("repository:alice/x:push,pull,pull",
     ("repository", "alice/x", {"pull", "push"}, None, True)),
    ("repository:httpd:pull",
     ("repository", "httpd", {"pull"}, None, True)),
    # a name may carry host:port (Harbor#3015): it parses, and is kept whole; nothing is ever
    # stripped, and such a name is no repository path (it is granted nothing)
    ("repository:myreg:5000/yidao620/httpd:pull",
     ("repository", "myreg:5000/yidao620/httpd", {"pull"}, None, False)),
    ("repository:localhost:5000/alice/x:push",
     ("repository", "localhost:5000/alice/x", {"push"}, None, False)),
    ("repository:[::1]:5000/alice/x:pull",
     ("repository", "[::1]:5000/alice/x", {"pull"}, None, False)),
    ("repository:MyReg.Example:5000/alice/x:pull",
     ("repository", "MyReg.Example:5000/alice/x", {"pull"}, None, False)),
    ("repository:MyReg.Example/alice/x:pull",
     ("repository", "MyReg.Example/alice/x", {"pull"}, None, False)),
    # a first component with a dot, or `localhost`, is a path component like any other: the
    # registry's name, in the namespace of the user of that name
    ("repository:registry.example.com/alice/x:pull",
     ("repository", "registry.example.com/alice/x", {"pull"}, None, True)),
    ("repository:localhost/alice/x:pull",
     ("repository", "localhost/alice/x", {"pull"}, None, True)),
    ("repository:john.smith/app:pull",
     ("repository", "john.smith/app", {"pull"}, None, True)),
    ("repository:0_0.0/john.smith:pull",
     ("repository", "0_0.0/john.smith", {"pull"}, None, True)),
    # deprecated resource class: parsed, kept apart from the type
    ("repository(plugin):alice/x:pull",
     ("repository", "alice/x", {"pull"}, "plugin", True)),
    ("registry:catalog:*",
     ("registry", "catalog", {"*"}, None, False)),
    ("repository:alice/x:*",
     ("repository", "alice/x", {"*"}, None, True)),
    ("repository:alice/x:delete",
     ("repository", "alice/x", {"delete"}, None, True)),
    ("repository:alice/x:scanner-pull",
     ("repository", "alice/x", {"scanner-pull"}, None, True)),
    # empty action list is legal ("may be empty")
    ("repository:alice/x:",
     ("repository", "alice/x", set(), None, True)),
    ("repository:alice/x:,",
     ("repository", "alice/x", set(), None, True)),
    # separators inside path components
    ("repository:a.b/c_d/e__f/g-h/i---j:pull",
     ("repository", "a.b/c_d/e__f/g-h/i---j", {"pull"}, None, True)),
    ("repository:alice/deep/nested/repo:pull",
     ("repository", "alice/deep/nested/repo", {"pull"}, None, True)),
    (f"repository:{NAME_255}:pull",
     ("repository", NAME_255, {"pull"}, None, True)),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[v[0][:60] for v in VALID])
def test_parse_scope_valid(text: str, expected: tuple) -> None:
    rtype, name, actions, resource_class, repository_path = expected
    scope = parse_scope(text)
    assert scope.type == rtype
    assert scope.name == name
    assert scope.actions == frozenset(actions)
    assert scope.resource_class == resource_class
    assert scope.is_repository_path is repository_path


INVALID = [
    "",
    "repository",
    "repository:",
    "repository:alice/x",          # no actions part at all
    "repository::pull",            # empty name
    ":alice/x:pull",               # empty type
    "Repository:alice/x:pull",     # upper-case type
    "repo sitory:alice/x:pull",
    "repository(Plugin):alice/x:pull",
    "repository(plugin:alice/x:pull",
    "repository(plugin)(x):alice/x:pull",
    "repository:Alice/x:pull",     # upper-case path component
    "repository:alice/X:pull",
    "repository:alice/../x:pull",
    "repository:alice/..:pull",
    "repository:a..b/x:pull",
    "repository:alice/x/:pull",    # trailing /
    "repository:/alice/x:pull",    # leading /
    "repository:alice//x:pull",
    "repository:alice/-x:pull",
    "repository:alice/x-:pull",
    "repository:alice/x_:pull",
    "repository:alice/a___b:pull",
    "repository:alice/x y:pull",
    f"repository:{NAME_256}:pull",
    f"repository:registry.example.com/{'a' * 240}:pull",  # host counts toward the 255
    "repository:alice/x:PULL",      # bad action chars
    "repository:alice/x:pull!",
    "repository:alice/x:pu_ll",
    "repository:alice/x:pull;rm",
    "repository:alice/x:-pull",
    "repository:alice/x:**",
    "repository:alice/x:pull*",
    "repository:alice/x:1pull",
    "repository:bad_host:5000/alice/x:pull",  # bad host
    "repository:-bad.example/alice/x:pull",
    "repository:bad-.example/alice/x:pull",
    "repository:myreg:port/alice/x:pull",
    "repository:myreg:5000:6000/alice/x:pull",
    "repository:alice:x:pull",      # a colon without a host
    "repository:alice/x\n:pull",    # `$` must not accept a trailing newline
    "repository:alice/x:pull\n",
    "registry:" + "c" * 256 + ":*",
]


@pytest.mark.parametrize("text", INVALID, ids=[repr(t)[:60] for t in INVALID])
def test_parse_scope_invalid(text: str) -> None:
    with pytest.raises(InvalidScope):
        parse_scope(text)


def test_invalid_scope_message_is_bounded() -> None:
    with pytest.raises(InvalidScope) as info:
        parse_scope("repository:" + "A" * 10_000 + ":pull")
    assert len(info.value.message) < 1000


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], []),
        ([""], []),
        (["   "], []),
        (["repository:alice/x:pull"], [("repository", "alice/x", {"pull"})]),
        # repeated parameters merge duplicates into the union of their actions
        (["repository:alice/x:pull", "repository:alice/x:push"],
         [("repository", "alice/x", {"pull", "push"})]),
        # space-separated lists in one value (containerd POST)
        (["repository:alice/x:pull repository:bob/y:push"],
         [("repository", "alice/x", {"pull"}), ("repository", "bob/y", {"push"})]),
        (["repository:alice/x:pull  repository:alice/x:delete\trepository:alice/x:pull"],
         [("repository", "alice/x", {"pull", "delete"})]),
        # both forms together, order of first appearance kept
        (["repository:bob/y:pull registry:catalog:*", "repository:alice/x:pull",
          "repository:bob/y:push"],
         [("repository", "bob/y", {"pull", "push"}), ("registry", "catalog", {"*"}),
          ("repository", "alice/x", {"pull"})]),
        # the class does not make a different resource
        (["repository(plugin):alice/x:pull", "repository:alice/x:push"],
         [("repository", "alice/x", {"pull", "push"})]),
        # empty action list merged with a real one
        (["repository:alice/x:", "repository:alice/x:pull"],
         [("repository", "alice/x", {"pull"})]),
        # same path with and without a host are different names for the registry
        (["repository:myreg:5000/alice/x:pull", "repository:alice/x:pull"],
         [("repository", "myreg:5000/alice/x", {"pull"}), ("repository", "alice/x", {"pull"})]),
    ],
)
def test_parse_scopes_merges(values: list[str], expected: list[tuple]) -> None:
    scopes = parse_scopes(values)
    assert [(s.type, s.name, set(s.actions)) for s in scopes] == expected


@pytest.mark.parametrize(
    "values",
    [
        ["repository:alice/x:pull", "garbage"],
        ["repository:alice/x:pull garbage"],
        ["repository:alice/x:pull repository:Alice/x:pull"],
    ],
)
def test_parse_scopes_one_bad_value_refuses_all(values: list[str]) -> None:
    with pytest.raises(InvalidScope):
        parse_scopes(values)


def test_parse_scopes_at_most_max_scopes() -> None:
    names = [f"repository:alice/r{i}:pull" for i in range(MAX_SCOPES)]
    assert len(parse_scopes(names)) == MAX_SCOPES
    with pytest.raises(InvalidScope):
        parse_scopes([*names, "repository:alice/one-too-many:pull"])
    with pytest.raises(InvalidScope):
        parse_scopes([" ".join([*names, "repository:alice/one-too-many:pull"])])


def test_parse_scopes_duplicates_do_not_count_toward_the_limit() -> None:
    names = [f"repository:alice/r{i}:pull" for i in range(MAX_SCOPES)]
    scopes = parse_scopes(names + names + ["repository:alice/r0:push"])
    assert len(scopes) == MAX_SCOPES
    assert scopes[0].actions == {"pull", "push"}


@pytest.mark.parametrize(
    ("scope", "text"),
    [
        (Scope("repository", "alice/x", frozenset({"push", "pull"})),
         "repository:alice/x:pull,push"),
        (Scope("registry", "catalog", frozenset({"*"})), "registry:catalog:*"),
        (Scope("repository", "alice/x", frozenset()), "repository:alice/x:"),
        (Scope("repository", "alice/x", frozenset({"pull"}), "plugin"), "repository:alice/x:pull"),
    ],
)
def test_str_formats_back_without_class(scope: Scope, text: str) -> None:
    assert str(scope) == text
    reparsed = parse_scope(text)
    assert (reparsed.type, reparsed.name, reparsed.actions) == (
        scope.type, scope.name, scope.actions)


def test_only_repository_scopes_name_repository_paths() -> None:
    assert not Scope("registry", "alice/x", frozenset()).is_repository_path
    assert not Scope("foo", "alice/x", frozenset()).is_repository_path
    assert Scope("repository", "alice/x", frozenset()).is_repository_path


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("alice/x", True),
        ("x", True),
        ("a.b/c", True),
        ("a" * MAX_NAME_LENGTH, True),
        ("a" * (MAX_NAME_LENGTH + 1), False),
        ("", False),
        ("Alice/x", False),
        ("alice/x/", False),
        ("alice/../x", False),
        ("alice/x\n", False),
        ("\nalice/x", False),
        ("alice x", False),
    ],
)
def test_is_valid_path(name: str, ok: bool) -> None:
    assert is_valid_path(name) is ok


@pytest.mark.parametrize(
    "name",
    ["alice/x", "myreg:5000/alice/x", "[::1]/x", NAME_255, "john.smith/x", "0_0.0/x",
     "localhost/x"],
)
def test_validate_repository_name_accepts(name: str) -> None:
    assert validate_repository_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "Alice/x", "alice/x/", NAME_256, "bad_host:1/x", "my reg:1/x", "alice/x\n"],
)
def test_validate_repository_name_refuses(name: str) -> None:
    with pytest.raises(InvalidName):
        validate_repository_name(name)

"""Fuzzing the scope parser (``authsvc.core.scopes``): any text parses or raises
``InvalidScope`` with a short message, valid repository scopes parse to their parts, and
repeated resources merge and count once against ``MAX_SCOPES``.
"""

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from authsvc.core.scopes import MAX_SCOPES, parse_scope, parse_scopes
from authsvc.errors import InvalidScope
from tests.token_checks import MESSAGE_BOUND
from tests.token_strategies import FUZZ, REQUEST_ACTIONS, scope_like

scope_texts = st.one_of(st.text(max_size=80), scope_like.map(lambda b: b.decode("utf-8",
                                                                                "replace")))


@settings(FUZZ, max_examples=300)
@given(texts=st.lists(scope_texts, max_size=8))
def test_parse_scopes_accepts_or_raises_invalid_scope_only(texts: list[str]) -> None:
    note(f"texts={texts!r}")  # the schemathesis plugin blanks hypothesis's own report
    try:
        scopes = parse_scopes(texts)
    except InvalidScope as error:
        assert len(error.message) <= MESSAGE_BOUND
        return
    assert len(scopes) <= MAX_SCOPES
    assert len({(s.type, s.name) for s in scopes}) == len(scopes)
    for scope in scopes:
        again = parse_scope(str(scope))
        assert (again.type, again.name, again.actions) == (scope.type, scope.name, scope.actions)
        assert not any(c.isspace() for c in scope.name)


components = st.from_regex(r"[a-z0-9]{1,6}(?:[._-][a-z0-9]{1,4})?", fullmatch=True)
paths = st.lists(components, min_size=1, max_size=3).map("/".join)
domains = st.sampled_from(["myreg:5000", "registry.example.com", "localhost", "localhost:5000",
                           "[::1]:5000", "MyReg.Example:443"])
actions_lists = st.lists(st.sampled_from(REQUEST_ACTIONS + ["a-b", "x"]), max_size=4)


@settings(FUZZ, max_examples=300)
@given(domain=st.one_of(st.none(), domains), path=paths, actions=actions_lists,
       cls=st.sampled_from([None, "plugin"]))
def test_valid_repository_scopes_parse_to_their_parts(domain: str | None, path: str,
                                                      actions: list[str],
                                                      cls: str | None) -> None:
    name = path if domain is None else f"{domain}/{path}"
    note(f"name={name!r} actions={actions!r} class={cls!r}")
    text = f"repository{'(' + cls + ')' if cls else ''}:{name}:{','.join(actions)}"
    scope = parse_scope(text)
    assert (scope.type, scope.name, scope.resource_class) == ("repository", name, cls)
    assert scope.actions == frozenset(actions)
    # nothing is stripped: behind a host and port the name is no repository path; a first
    # component like ``registry.example.com`` or ``localhost`` is a path component
    assert scope.is_repository_path is (domain in (None, "registry.example.com", "localhost"))


@settings(FUZZ, max_examples=200)
@given(picks=st.lists(st.tuples(st.integers(0, MAX_SCOPES + 5), actions_lists), max_size=120))
def test_parse_scopes_merges_and_counts_distinct_resources(
        picks: list[tuple[int, list[str]]]) -> None:
    values = [f"repository:alice/r{i}:{','.join(actions)}" for i, actions in picks]
    note(f"values={values!r}")
    model: dict[str, set[str]] = {}
    for i, actions in picks:
        model.setdefault(f"alice/r{i}", set()).update(actions)
    joined = [" ".join(values[i:i + 3]) for i in range(0, len(values), 3)]
    if len(model) > MAX_SCOPES:
        with pytest.raises(InvalidScope):
            parse_scopes(joined)
        return
    scopes = parse_scopes(joined)
    assert [(s.name, set(s.actions)) for s in scopes] == list(model.items())

"""The access decision (authorization): the facts it reads for policy, and what it grants on
each requested scope."""

from authsvc.core.policy import Grant, Subject
from authsvc.core.scopes import Scope, parse_scope
from authsvc.db.services import Services


def decide(state: Services, subject: Subject, *scopes: str) -> list[tuple[str, list[str]]]:
    """Each scope's name and the actions granted, in the order asked."""
    return [(scope.name, sorted(actions)) for scope, actions in
            state.authorizer.authorize(subject, [parse_scope(s) for s in scopes])]


def test_repo_facts_holds_only_grants_that_can_cover_the_path(state: Services) -> None:
    state.accounts.create_user("bob", "bob-password")
    state.repos.create("alice/web", "public")
    state.grants.grant("bob", "alice/*", "pull")
    state.grants.grant("bob", "alice/web", "push,pull")
    state.grants.grant("bob", "carol/*", "delete")
    facts = state.authorizer.facts(Subject("bob"), "alice/web")
    assert facts.public and facts.exists
    assert set(facts.grants) == {Grant("alice/*", frozenset({"pull"})),
                                 Grant("alice/web", frozenset({"pull", "push"}))}
    assert state.authorizer.facts(Subject(None), "alice/web").grants == ()


def test_an_owner_is_read_no_grants(state: Services) -> None:
    state.grants.grant("alice", "alice/*", "pull")
    facts = state.authorizer.facts(Subject("alice"), "alice/web")
    assert facts.grants == () and not facts.exists and not facts.public


def test_each_scope_gets_what_is_allowed_in_the_order_asked(state: Services) -> None:
    state.repos.create("carol/pub", "public")
    state.grants.grant("bob", "dave/*", "pull,push")
    assert decide(state, Subject("bob"), "repository:carol/pub:pull,push",
                  "repository:dave/x:*", "repository:erin/x:pull", "registry:catalog:*,search") == [
        ("carol/pub", ["pull"]), ("dave/x", ["pull", "push"]), ("erin/x", []),
        ("catalog", ["search"])]


def test_a_push_by_the_owner_registers_the_repository(state: Services) -> None:
    assert decide(state, Subject("alice"), "repository:alice/new:push") == [
        ("alice/new", ["push"])]
    repo = state.repos.get("alice/new")
    assert repo.visibility == state.repos.default_visibility


def test_a_pull_or_a_denied_push_registers_nothing(state: Services) -> None:
    decide(state, Subject("alice"), "repository:alice/pulled:pull")
    decide(state, Subject("bob"), "repository:alice/pushed:push")
    decide(state, Subject(None), "repository:alice/other:*")
    assert state.repos.search()[1] == 0


def test_a_name_with_a_registry_host_is_looked_up_nowhere(state: Services) -> None:
    scope = Scope("repository", "myreg:5000/alice/app", frozenset({"pull", "push"}))
    assert state.authorizer.authorize(Subject("alice", admin=True), [scope]) == [
        (scope, frozenset())]
    assert state.repos.search()[1] == 0

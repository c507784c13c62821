"""URL routing: no request is ever redirected, least of all to a host the request named.

Werkzeug redirects (308) a path with doubled slashes to the merged one, and a path without the
trailing slash to a rule that has one, building the new URL from the ``Host`` header: a link
to authsvc could send its visitor to any host. Every such shape must answer the registry's
JSON error (404) instead, or the route's own answer.
"""

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

FOREIGN_HOST = {"Host": "evil.example"}
#: A value for each converter a route uses.
SAMPLE_VALUES = {"path": "alice/web", "int": "1", "default": "alice"}
CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>")


def sample_path(rule: Rule) -> str:
    """The rule's path with a sample value for each variable."""
    return CONVERTER.sub(lambda m: SAMPLE_VALUES.get(m.group(1) or "default", "x"), rule.rule)


def shapes(path: str) -> Iterator[str]:
    """``path`` with one slash doubled (each in turn), with a trailing slash added or removed,
    and with every slash doubled."""
    for at in [i for i, char in enumerate(path) if char == "/"]:
        yield path[:at] + "/" + path[at:]
    yield path[:-1] if path.endswith("/") else path + "/"
    yield path.replace("/", "//")


def assert_not_redirected(client: FlaskClient, method: str, path: str) -> None:
    # PATH_INFO as given: the test client would read a leading "//" as a host name
    response = client.open("/", method=method, headers=FOREIGN_HOST,
                           environ_overrides={"PATH_INFO": path})
    assert not 300 <= response.status_code < 400, (method, path, response.status_code)
    assert "Location" not in response.headers, (method, path, response.headers["Location"])
    assert "evil.example" not in response.get_data(as_text=True)
    if response.status_code == 404 and method != "HEAD":  # (HEAD: no body)
        assert response.json is not None and response.json["errors"][0]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("path", [
    "/api/v1//me", "/api/v1/me/", "/api//v1/me", "/.well-known//jwks.json", "/api/v1//users",
    "/api/v1/repositories/alice//web", "/api/v1/users/alice//tokens", "/api/v1/me//",
])
def test_doubled_and_trailing_slashes_are_not_redirected_to_the_host_header(
        client: FlaskClient, path: str) -> None:
    response = client.get(path, headers=FOREIGN_HOST)
    assert response.status_code in (401, 404, 422), (path, response.status_code)
    assert "Location" not in response.headers
    assert "evil.example" not in response.get_data(as_text=True)


def test_a_doubled_slash_answers_the_registry_format_404(client: FlaskClient) -> None:
    response = client.get("/api/v1//me", headers=FOREIGN_HOST)
    assert response.status_code == 404
    assert response.json is not None
    assert response.json["errors"][0]["code"] == "NOT_FOUND"


def test_no_route_in_any_shape_redirects(app: Flask, client: FlaskClient) -> None:
    """Every route and method, with slashes doubled or a trailing slash added or dropped."""
    tried = 0
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods or ()):
            for path in shapes(sample_path(rule)):
                assert_not_redirected(client, method, path)
                tried += 1
    assert tried > 100


def test_the_url_map_never_redirects(app: Flask) -> None:
    """No slash merging, no redirect to a rule's defaults, no rule ending in a slash (which
    strict slashes would redirect to)."""
    assert app.url_map.merge_slashes is False
    assert app.url_map.redirect_defaults is False
    for rule in app.url_map.iter_rules():
        assert rule.merge_slashes is False, rule.rule
        assert rule.redirect_to is None, rule.rule
        assert not rule.rule.endswith("/"), rule.rule

"""Fuzzing the admin API with raw bytes: path segments, queries and bodies that are not even
UTF-8 reach the routes as a real server would pass them, and get an expected status with a
JSON body (errors in the registry's format), never a 5xx or a stack trace.
"""

import json

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from tests.token_checks import body_of
from tests.token_helpers import basic
from tests.token_strategies import (
    FUZZ,
    NO_LOCKOUT,
    AuthSpec,
    as_sent,
    atoms,
    authorizations,
    encode_pair,
    fuzz_world,
    latin1,
    utf8,
    values,
)

ADMIN_ROUTES = [
    ("GET", "/api/v1/me"), ("GET", "/api/v1/users"), ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/{}"), ("PATCH", "/api/v1/users/{}"), ("DELETE", "/api/v1/users/{}"),
    ("POST", "/api/v1/users/{}/tokens"), ("GET", "/api/v1/users/{}/tokens"),
    ("DELETE", "/api/v1/users/{}/tokens/{}"), ("GET", "/api/v1/users/{}/refresh-tokens"),
    ("GET", "/api/v1/repositories"), ("POST", "/api/v1/repositories"),
    ("GET", "/api/v1/repositories/{}"), ("PATCH", "/api/v1/repositories/{}"),
    ("DELETE", "/api/v1/repositories/{}"), ("GET", "/api/v1/repositories/{}/-/grants"),
    ("PUT", "/api/v1/repositories/{}/-/grants/{}"),
    ("DELETE", "/api/v1/repositories/{}/-/grants/{}"), ("GET", "/api/v1/repositories/{}/grants"),
    ("GET", "/api/v1/namespaces/{}/grants"), ("PUT", "/api/v1/namespaces/{}/grants/{}"),
    ("GET", "/api/v1/audit"),
]
# 503: a registry delete without REGISTRY_URL (the test app talks to no registry)
ADMIN_STATUSES = {200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 422, 429, 503}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["alice", "alice/app", "pull", "*", "public", "read", "\x00", "a" * 300]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["username", "password", "admin", "robot", "disabled", "name",
                         "visibility", "actions", "permission", "repositories",
                         "expires_in_days", "x"]), inner, max_size=4),
    max_leaves=8)
admin_bodies = st.one_of(st.none(), json_values.map(lambda v: json.dumps(v).encode()),
                         st.binary(max_size=64), st.sampled_from([b"{", b"\xff", b"[]", b"{}"]))


@NO_LOCKOUT
@settings(FUZZ, max_examples=150)
@given(route=st.sampled_from(ADMIN_ROUTES),
       params=st.lists(st.one_of(atoms, st.sampled_from([b"alice", b"root", b"alice/app", b"1",
                                                         b"99999999999", b"-1", b"alice%2Fapp",
                                                         b"__A100K__"])), min_size=3, max_size=3),
       query=st.lists(st.tuples(st.sampled_from([b"page", b"per_page", b"q", b"actor", b"since",
                                                 b"action", b"target", b"limit"]), values),
                      max_size=3),
       body=admin_bodies, content_type=st.sampled_from(["application/json", "text/plain", "",
                                                        "application/json; charset=\xff"]),
       authorization=st.one_of(st.sampled_from(["root", "alice"]), authorizations))
def test_admin_api_survives_raw_bytes(
        app: Flask, client: FlaskClient, route: tuple[str, str], params: list[bytes],
        query: list[tuple[bytes, bytes]], body: bytes | None, content_type: str,
        authorization: str | AuthSpec) -> None:
    """Complements the schemathesis run: path segments, queries and bodies that are not even
    UTF-8 reach the routes as a real server would pass them."""
    world = fuzz_world(app)
    method, template = route
    path = template.format(*(latin1(world.fill(p)) for p in params))
    if isinstance(authorization, str):
        header: bytes | None = utf8(basic(authorization))
    else:
        header = world.authorization(authorization)
    query_string = as_sent(b"&".join(encode_pair(k, v, "raw") for k, v in query))
    environ = {"PATH_INFO": path, "QUERY_STRING": latin1(world.fill(query_string, as_sent)),
               "CONTENT_TYPE": content_type}
    if header is not None:
        environ["HTTP_AUTHORIZATION"] = latin1(header)
    note(f"{method} {path[:300]!r}")
    response = client.open("/", method=method, data=world.fill(body or b""),
                           environ_overrides=environ)
    event(f"status {response.status_code}")
    if response.status_code == 204:
        assert response.get_data() == b""
        return
    if response.status_code == 308:  # werkzeug merges repeated slashes with a redirect
        assert "//" in path and response.headers["Location"]
        return
    json_body = body_of(response, ADMIN_STATUSES)
    if response.status_code >= 400:
        assert set(json_body) == {"errors"}, json_body

"""Fuzzing ``GET /token``: any query string and any Authorization header (raw bytes, NUL,
invalid UTF-8, broken Basic credentials, a tight lockout) gets an expected status, a JSON body
in the registry's error format or a token inside what its subject may hold, and never a 5xx or
a stack trace.
"""

import base64
import os
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from authsvc.db.services import Services, services_of
from tests.conftest import PASSWORD
from tests.token_checks import (
    body_of,
    check_get_response,
    check_post_response,
    check_registry_error,
)
from tests.token_helpers import Decode
from tests.token_strategies import (
    FUZZ,
    NO_LOCKOUT,
    PAT,
    RT,
    AuthSpec,
    as_sent,
    authorizations,
    fuzz_world,
    latin1,
    query_strings,
    raw_get,
    small_world,
    utf8,
)


@NO_LOCKOUT
@FUZZ
@given(query=query_strings(), authorization=authorizations)
def test_get_token_survives_any_query_and_authorization(
        app: Flask, client: FlaskClient, decode: Decode, query: bytes,
        authorization: AuthSpec) -> None:
    world = fuzz_world(app)
    query, header = world.fill(query, as_sent), world.authorization(authorization)
    note(f"GET /token?{query[:500]!r} Authorization: {(header or b'')[:300]!r}")
    response = raw_get(client, query, header)
    event(f"status {response.status_code}")
    check_get_response(response, decode)


#: Well-formed Basic credentials that fail: these are what the lockout counts.
failed_logins = st.tuples(
    st.just("basic"), st.just(b"Basic "),
    st.sampled_from([b"alice", b"root", b"nobody", b"alice\x00", b"__NUL1K__", b"__A100K__",
                     b"' OR 1=1 --", utf8("\u202eecila"), b"%00", b"a" * 300]),
    st.just(b":"), st.sampled_from([b"wrong password", b"", b"\x00", b"__A100K__", PAT + b"x",
                                    b"authsvc_pat_x", RT]),
    st.just("none"))


@pytest.mark.app_config(LOCKOUT_ATTEMPTS=2, LOCKOUT_ADDRESS_ATTEMPTS=20, LOCKOUT_WINDOW=3600)
@settings(FUZZ, max_examples=60)
@given(logins=st.lists(st.tuples(st.one_of(failed_logins, failed_logins, authorizations),
                                 st.sampled_from([b"", b"&scope=repository:alice/pub:pull",
                                                  b"&scope=registry:catalog:*"])),
                       min_size=1, max_size=8))
def test_get_token_with_a_tight_lockout_answers_429_cleanly(
        app: Flask, client: FlaskClient, decode: Decode,
        logins: list[tuple[AuthSpec, bytes]]) -> None:
    """Garbage user names (NUL, huge, non-UTF-8) go through the failure store as keys, and
    the lockout's 429 comes in the registry format with Retry-After."""
    world = fuzz_world(app)
    for authorization, query in logins:
        header = world.authorization(authorization)
        note(f"GET /token?service=registry{query!r} Authorization: {(header or b'')[:300]!r}")
        response = raw_get(client, b"service=registry" + query, header)
        event(f"status {response.status_code}")
        check_get_response(response, decode)


def short_id(value: bytes) -> str:
    return repr(value[:60]) + (f"+{len(value) - 60}" if len(value) > 60 else "")


@NO_LOCKOUT
@pytest.mark.parametrize("query", [
    b"service=registry&scope=repository:alice/app:pull%FF",
    b"service=registry&scope=repository:alice/app%00:pull",
    b"service=registry&scope=repository:alice/%2F..:pull",
    b"service=registry&scope=repository:..%2F..%2Fetc%2Fpasswd:pull",
    b"service=registry&scope=repository:alice/app'%20OR%201=1%20--:pull",
    b"service=registry&scope=foo:%27OR%271%27=%271:pull",
    b"service=%FF",
    b"service=registry%00",
    b"service=registry&service=%00",
    b"service=registry&scope=" + b"repository:alice/app:pull%20" * 2000,
    b"service=registry&" + b"&".join(b"scope=repository:alice/r%d:pull" % i for i in range(5000)),
    b"service=registry&scope=registry:catalog:*&scope=repository(plugin):alice/pub:*",
    b"service=registry&scope=repository:alice/pub:%E3%80%80pull",
    b"%%%%&&&===;;;",
], ids=short_id)
def test_get_token_examples(client: FlaskClient, decode: Decode, app: Flask, query: bytes) -> None:
    small_world(app)
    check_get_response(raw_get(client, query, None), decode)


@NO_LOCKOUT
@pytest.mark.parametrize("path", ["/token?service=registry", "/api/v1/me"])
@pytest.mark.parametrize("header", [b"Basic \xff\xfe", b"Basic \xc3\xa9", b"basic \xe9:x",
                                    b"Basic YWxpY2U6\xff"])
def test_non_ascii_authorization_header_is_401(client: FlaskClient, path: str,
                                               header: bytes) -> None:
    """The server passes header bytes 0x80-0xFF on (as latin-1); they are bad credentials."""
    response = client.get(path, environ_overrides={"HTTP_AUTHORIZATION": latin1(header)})
    check_registry_error(response, body_of(response, {401}))


@pytest.mark.parametrize("query", [b"\x80=", b"service=registry&scope=repository:alice/\xff:pull",
                                   b"service=registry\xc3"])
def test_raw_non_utf8_query_string_is_400(client: FlaskClient, query: bytes) -> None:
    """granian refuses such a request line itself, but ``flask run`` and other WSGI servers
    pass the bytes on in QUERY_STRING (PEP 3333)."""
    response = raw_get(client, query, None)
    check_registry_error(response, body_of(response, {400}))


NUL_REQUESTS = {
    "service": ("GET", "/token?service=%00", None, None),
    "malformed scope": ("GET", "/token?service=registry&scope=%00", None, None),
    "other resource name": ("GET", "/token?service=registry&scope=foo:a%00b:pull", None, None),
    "basic user name": ("GET", "/token?service=registry", "al\x00ice:x", None),
    "client_id": ("GET", "/token?service=registry&offline_token=true&client_id=a%00",
                  "alice:" + PASSWORD, None),
    "form user name": ("POST", "/token", None, {"username": "al\x00ice"}),
    "form client_id": ("POST", "/token", None, {"client_id": "x\x00", "access_type": "offline"}),
    "form service": ("POST", "/token", None, {"service": "\x00"}),
    "admin API user, as the user": ("GET", "/api/v1/users/a%00/tokens", "alice:" + PASSWORD,
                                    None),
    "admin API user, as an admin": ("GET", "/api/v1/users/a%00", "root:" + PASSWORD, None),
    "admin API repository": ("GET", "/api/v1/repositories/alice/a%00", "root:" + PASSWORD,
                             None),
    "admin API audit filter": ("GET", "/api/v1/audit?actor=a%00", "root:" + PASSWORD, None),
}


@NO_LOCKOUT
@pytest.mark.parametrize("name", sorted(NUL_REQUESTS))
def test_nul_bytes_are_refused_not_500(client: FlaskClient, make_user: Any, decode: Decode,
                                       name: str) -> None:
    """PostgreSQL text cannot hold NUL: a NUL that reaches a query or the audit trail is a
    DataError there (SQLite takes it). Run with AUTHSVC_TEST_DATABASE_URL to see it."""
    make_user("alice")
    make_user("root", admin=True)
    method, path, credentials, form = NUL_REQUESTS[name]
    headers = {} if credentials is None else {
        "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
    if method == "GET":
        response = client.get(path, headers=headers)
        body = body_of(response, {200, 400, 401, 403, 404, 422})
        if response.status_code != 200:
            check_registry_error(response, body)
        return
    fields = {"grant_type": "password", "username": "alice", "password": PASSWORD,
              "service": "registry", "client_id": "containerd-client", **(form or {})}
    check_post_response(client.post(path, data=fields), decode)


@NO_LOCKOUT
def test_a_nul_in_one_request_does_not_block_the_audit_trail(
        app: Flask, client: FlaskClient, make_user: Any, decode: Decode) -> None:
    """With batched audit writes, one event that cannot be stored must not keep the others
    from being written (on PostgreSQL a NUL makes the whole batch fail)."""
    make_user("alice")
    state: Services = services_of(app)
    state.audit.batch_seconds = 60  # batch, but flush by hand:
    state.audit._flusher_pid = os.getpid()  # no background flusher thread for this test
    try:
        body_of(client.get("/token?service=registry&scope=foo:a%00b:pull"), {200, 400})
        ok = client.get("/token?service=registry&scope=repository:alice/app:pull",
                        auth=("alice", PASSWORD))
        body_of(ok, {200})
        with app.app_context():
            state.audit.flush()
            events, _ = state.audit.search(actor="alice", action="token.issued")
        assert [e.requested for e in events] == ["repository:alice/app:pull"]
    finally:
        state.audit.batch_seconds = 0

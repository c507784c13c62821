"""Bad input, proven by fuzzing: the realm (``GET``/``POST /token``), the scope parser and the
admin API never answer 5xx or leak a stack trace, and no token holds more, or less, than
requested ∩ allowed.

What a token may hold is decided here by an oracle written from the rules (PROTOCOL §1.5,
``authsvc/policy.py``'s docstring) without calling ``authsvc.core.policy``, and compared both ways
with what the service granted.

Requests are built as raw WSGI values (``QUERY_STRING``, ``HTTP_AUTHORIZATION``, body bytes) so
that invalid UTF-8, NUL bytes and broken percent-encodings reach the app as a real server would
pass them on.
"""

import base64
import io
import json
import operator
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_from_bytes, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from authsvc.core.scopes import MAX_NAME_LENGTH, MAX_SCOPES, parse_scope, parse_scopes
from authsvc.db.audit import Origin, set_origin
from authsvc.db.models import db
from authsvc.db.services import Services, services_of
from authsvc.errors import Conflict, InvalidScope
from tests.conftest import PASSWORD, empty_tables

Decode = Callable[..., dict[str, Any]]

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large,
                                       HealthCheck.large_base_example,
                                       HealthCheck.filter_too_much])

#: No lockout: random bad credentials must not turn later requests into 429.
NO_LOCKOUT = pytest.mark.app_config(LOCKOUT_ATTEMPTS=0, LOCKOUT_ADDRESS_ATTEMPTS=0)

GET_STATUSES = {200, 400, 401, 413, 429}
POST_STATUSES = {200, 400, 401, 413, 429}
OAUTH_ERRORS = {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                "unsupported_grant_type", "invalid_scope", "temporarily_unavailable"}
REPOSITORY_ACTIONS = frozenset({"pull", "push", "delete"})
ONE_MIB = 1 << 20
#: Error messages quote at most a few hundred characters of the input; escaping (``\\x00``,
#: ``\\U0001f600``) may make that a few thousand, never the megabyte that was sent.
MESSAGE_BOUND = 4096

PAT = b"__PAT__"  # replaced by a real access token secret of alice at run time
RT = b"__RT__"  # replaced by a real refresh token secret of alice at run time


@pytest.fixture(autouse=True)
def fresh_audit_origin() -> Iterator[None]:
    """The test client runs requests in this thread's context, where ``before_request`` sets
    the audit origin (actor, client_id) and leaves it set: later events recorded outside a
    request (``make_user``, the next test) would carry it, NUL bytes included. Leave none."""
    set_origin(Origin())
    yield
    set_origin(Origin())


# -- response checks ------------------------------------------------------------------------

def no_stack_trace(text: str) -> None:
    assert "Traceback" not in text, text[:2000]
    assert 'File "' not in text, text[:2000]


def body_of(response: Any, statuses: set[int]) -> Any:
    """Status in ``statuses``, a JSON body, and nothing that looks like a stack trace."""
    text = response.get_data(as_text=True)
    assert response.status_code in statuses, (response.status_code, text[:2000])
    no_stack_trace(text)
    for name, value in response.headers.items():
        no_stack_trace(f"{name}: {value}")
    assert response.mimetype == "application/json", (response.mimetype, text[:500])
    return json.loads(text)


def check_registry_error(response: Any, body: Any) -> None:
    """``{"errors": [{"code": …, "message": …}]}`` with the headers its status needs."""
    assert isinstance(body, dict) and set(body) == {"errors"}, body
    assert isinstance(body["errors"], list) and len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert {"code", "message"} <= set(error), body
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and error["message"], body
    assert len(error["message"]) <= MESSAGE_BOUND, len(error["message"])
    check_error_headers(response)


def check_oauth_error(response: Any, body: Any) -> None:
    """RFC 6749 §5.2: ``{"error": …, "error_description": …}``."""
    assert isinstance(body, dict) and set(body) == {"error", "error_description"}, body
    assert body["error"] in OAUTH_ERRORS, body
    assert isinstance(body["error_description"], str) and body["error_description"], body
    assert len(body["error_description"]) <= MESSAGE_BOUND, len(body["error_description"])
    check_error_headers(response)


def check_error_headers(response: Any) -> None:
    if response.status_code == 401 and "errors" in (response.json or {}):
        assert response.headers.get("WWW-Authenticate", "").startswith("Basic ")
    if response.status_code == 429:
        assert response.headers.get("Retry-After", "").isdigit()


def check_token_body(body: Any, decode: Decode) -> dict[str, Any]:
    """The fields every 200 carries (PROTOCOL §1.3); returns the verified claims."""
    assert {"token", "access_token", "expires_in", "issued_at"} <= set(body), body
    assert body["token"] == body["access_token"]
    assert isinstance(body["expires_in"], int) and body["expires_in"] >= 60
    claims = decode(body["token"])
    assert isinstance(claims["access"], list)
    for entry in claims["access"]:
        assert set(entry) == {"type", "name", "actions"}, entry
        actions = entry["actions"]
        assert actions == sorted(set(actions)), entry
        assert set(actions) <= REPOSITORY_ACTIONS | {"*"}, entry
        assert "*" not in actions or actions == ["*"], entry
    return claims


#: The oracle's own repository path grammar (distribution's ``reference`` path components).
PATH_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)"
                     r"[a-z0-9]+)*)*")


def registry_path(name: str) -> str | None:
    """The oracle's reading of a requested name: the name itself, exactly as the registry sees
    it, when the registry can hold it (a repository path of at most 255 characters); None for
    one behind a ``host:port/`` prefix, which nothing is granted on."""
    return name if len(name) <= MAX_NAME_LENGTH and PATH_RE.fullmatch(name) else None


def check_small_world_grant(claims: dict[str, Any]) -> None:
    """The fuzz world holds alice (user), root (admin) and the public repository alice/pub:
    whatever the request, the token stays inside what its subject may hold."""
    sub = claims["sub"]
    assert sub in ("", "alice", "root"), sub
    for entry in claims["access"]:
        actions = set(entry["actions"])
        if not actions or sub == "root":
            continue
        assert entry["type"] == "repository", (sub, entry)
        path = registry_path(entry["name"])
        if sub == "alice" and path is not None and path.startswith("alice/"):
            continue
        assert path == "alice/pub" and actions == {"pull"}, (sub, entry)


# -- raw request material -------------------------------------------------------------------

def utf8(text: str) -> bytes:
    """UTF-8, with lone surrogates passed through: that makes invalid UTF-8 on purpose."""
    return text.encode("utf-8", "surrogatepass")


INJECTIONS = [
    "' OR 1=1 --", '" OR ""="', "1; DROP TABLE users; --", "alice' --", "../../../etc/passwd",
    "..%2F..%2Fetc", "%2F", "%252F", "%00", "%FF", "%C0%AF", "%E2%80%AE", "%", "%%", "%G1", "%0",
    "\x00", "\r\n", "\t", "\x0b", "\x1c", "\x85", "\u00a0", "\u2028", "\u3000", "\ufeff",
    "\u202e", "Ω", "ℌ", "ſ", "😀", "\udcff", "<script>alert(1)</script>", "${jndi:ldap://x/a}",
    "{{7*7}}", "alice/*", "*", "+", "&", "=", ";", "#", "?", "\\", "/", ":", ",", "()", "(",
    "repository:alice/app:pull", "registry:catalog:*", "repository(plugin):alice/app:*",
    "repository:myreg:5000/alice/app:pull,push", "repository:alice/pub:pull",
]
#: Large values stand in the generated data as short placeholders, expanded when the request
#: is sent, so that hypothesis never has to print them.
BIG = {
    b"__A100K__": b"a" * 100_000,
    b"__LONGNAME__": b"repository:alice/" + b"a" * 100_000 + b":pull",
    b"__MANYACTIONS__": b"repository:alice/app:" + b"pull," * 20_000,
    b"__OTHERNAME__": b"foo:" + b"x" * 100_000 + b":pull",
    b"__SPACED100__": b" ".join(b"repository:alice/r%d:pull" % i for i in range(100)),
    b"__FF5K__": b"\xff" * 5_000,
    b"__NUL30K__": b"%00" * 30_000,
    b"__NUL1K__": b"\x00" * 1000,
}
#: Hundreds or thousands of ``scope=`` parameters, distinct or all the same.
MANY = {b"__MANY%d%s__" % (count, b"D" if distinct else b"S"): b"&".join(
    b"scope=repository:alice/r%d:pull" % (i if distinct else 0) for i in range(count))
    for count in (MAX_SCOPES, MAX_SCOPES + 1, 500, 3000) for distinct in (True, False)}
KNOWN_NAMES = ["alice/app", "alice/pub", "root/x", "httpd", "catalog", "myreg:5000/alice/app",
               "localhost/alice/pub", "[::1]:5000/alice/pub", "a" * 256, "A/b", "alice//x",
               "alice/", "/alice", "alice/.", "alice/_x", ""]

atoms = st.one_of(
    st.sampled_from(INJECTIONS).map(utf8),
    st.binary(max_size=24),
    st.text(max_size=24).map(utf8),
)
type_parts = st.one_of(st.sampled_from(["repository", "repository(plugin)", "registry", "foo",
                                        "REPOSITORY", "repository()", "repo sitory", "",
                                        "registry(x)(y)"]).map(utf8), atoms)
name_parts = st.one_of(st.sampled_from(KNOWN_NAMES).map(utf8),
                       st.lists(atoms, min_size=1, max_size=3).map(b"/".join), atoms)
action_parts = st.lists(
    st.one_of(st.sampled_from(["pull", "push", "delete", "*", "PULL", "scanner-pull", "",
                               "pull push", "**", "-", "a-"]).map(utf8), atoms),
    max_size=4).map(b",".join)
scope_like = st.builds(lambda t, n, a: t + b":" + n + b":" + a, type_parts, name_parts,
                       action_parts)
values = st.one_of(scope_like, st.lists(atoms, max_size=4).map(b"".join),
                   st.sampled_from(sorted(BIG)), st.sampled_from([PAT, RT]))
keys = st.one_of(st.sampled_from(["service", "scope", "scope", "scope", "account", "client_id",
                                  "offline_token", "Scope", "scope[]", "", "scope\x00",
                                  "service "]).map(utf8), st.binary(max_size=8))


_UNSENDABLE = re.compile(rb"[^\x21-\x7e]")


def as_sent(raw: bytes) -> bytes:
    """``raw`` as it can stand in a request line: granian (like gunicorn) refuses bytes outside
    printable ASCII there with its own 400, so a client percent-encodes them."""
    return _UNSENDABLE.sub(lambda m: b"%%%02X" % m.group()[0], raw)


def encode_pair(key: bytes, value: bytes, mode: str) -> bytes:
    """One ``key=value`` of a query string or form body: percent-encoded, partly, or raw."""
    if mode == "quote":
        return quote_from_bytes(key, safe="").encode() + b"=" + quote_from_bytes(
            value, safe="").encode()
    if mode == "typical":
        return quote_from_bytes(key).encode() + b"=" + quote_from_bytes(
            value, safe=":/,*()").encode()
    if mode == "no-equals":
        return key + value
    return key + b"=" + value


pairs = st.lists(st.tuples(keys, values, st.sampled_from(["quote", "typical", "raw", "raw",
                                                          "no-equals"])), max_size=6)


@st.composite
def query_strings(draw: st.DrawFn) -> bytes:
    parts = []
    if draw(st.integers(0, 4)):
        parts.append(b"service=registry")
    parts += [encode_pair(k, v, mode) for k, v, mode in draw(pairs)]
    if draw(st.integers(0, 5)) == 0:
        parts.append(draw(st.sampled_from(sorted(MANY))))
    order = draw(st.permutations(range(len(parts))))
    return as_sent(b"&".join(parts[i] for i in order))


usernames = st.one_of(st.sampled_from([b"alice", b"alice", b"root", b"nobody", b"", b"ALICE",
                                       b"alice\x00", b"\x00", b"\xff\xfe", b"__A100K__",
                                       b"' OR 1=1 --", b"alice:", b"robot$", b"__NUL1K__"]),
                      st.binary(max_size=16))
passwords = st.one_of(st.sampled_from([utf8(PASSWORD), utf8(PASSWORD), b"wrong password", b"",
                                       b"\x00", utf8(PASSWORD) + b"\x00", b"\xff",
                                       b"authsvc_pat_", b"authsvc_pat_" + b"x" * 43,
                                       b"authsvc_rt_x", b"__A100K__", utf8("é") * 40,
                                       b"a:b", PAT, RT, PAT + b"x", PAT[:-1]]),
                      st.binary(max_size=16))
schemes = st.sampled_from([b"Basic ", b"Basic ", b"basic ", b"BASIC ", b"Basic  ", b"Basic\t",
                           b"Bearer ", b"Digest ", b"", b"Basic"])
MANGLES: dict[str, Callable[[bytes], bytes]] = {
    "none": lambda b: b,
    "no padding": lambda b: b.rstrip(b"="),
    "extra padding": lambda b: b + b"=",
    "cut": lambda b: b[:-1],
    "spaces": lambda b: b" " + b + b" ",
    "newline": lambda b: b[:4] + b"\n" + b[4:],
    "junk": lambda b: b + b"!!",
    "urlsafe": lambda b: b.replace(b"+", b"-").replace(b"/", b"_"),
}
#: ("basic", scheme, user, separator, password, mangle) or ("raw", header): built at send time,
#: after the placeholders are filled in.
AuthSpec = tuple[Any, ...] | None
authorizations: st.SearchStrategy[AuthSpec] = st.one_of(
    st.none(),
    st.tuples(st.just("basic"), schemes, usernames, st.sampled_from([b":", b":", b"", b"::"]),
              passwords, st.sampled_from(["none", "none", "none", *MANGLES])),
    st.tuples(st.just("raw"), st.builds(operator.add, schemes, st.binary(max_size=64))),
    st.tuples(st.just("raw"), st.sampled_from([
        b"", b" ", b"Basic", b"Basic ", b"Bearer", b"Bearer ", b"Basic =", b"Basic ====",
        b"Bearer " + PAT, b"Bearer authsvc_pat_x", b"Basic \x00", b"Basic __A100K__",
        b"\xff\xfe\xfd", b"Basic Og==", b"Negotiate x"])),
)


@dataclass
class SmallWorld:
    """The world the GET/POST fuzz tests run against; secrets substitute the placeholders."""

    pat: bytes
    rt: bytes

    def fill(self, raw: bytes, encode: Callable[[bytes], bytes] = bytes) -> bytes:
        """Put the secrets and the large values (``encode``d) in place of their placeholders."""
        raw = raw.replace(PAT, self.pat).replace(RT, self.rt)
        if b"__" in raw:
            for placeholder, value in (*BIG.items(), *MANY.items()):
                if placeholder in raw:
                    raw = raw.replace(placeholder, encode(value))
        return raw

    def authorization(self, spec: AuthSpec) -> bytes | None:
        if spec is None:
            return None
        if spec[0] == "raw":
            return self.fill(spec[1])
        _, scheme, user, separator, password, mangle = spec
        credentials = self.fill(user) + separator + self.fill(password)
        return bytes(scheme + MANGLES[mangle](base64.b64encode(credentials)))


def small_world(app: Flask) -> SmallWorld:
    with app.app_context():
        state: Services = services_of(app)
        state.accounts.create_user("alice", PASSWORD)
        state.accounts.create_user("root", PASSWORD, admin=True)
        state.repos.create("alice/pub", "public")
        _, pat = state.access_tokens.create("alice", "ci", "read", repositories=["alice/pub"])
        rt = state.refresh_tokens.issue("alice", "registry", "docker")
        db.session.remove()
    return SmallWorld(pat.encode(), rt.encode())


def latin1(raw: bytes) -> str:
    """A WSGI environ value holding ``raw`` as the server received it (PEP 3333)."""
    return raw.decode("latin-1")


def raw_get(client: FlaskClient, query: bytes, authorization: bytes | None) -> Any:
    environ = {"QUERY_STRING": latin1(query)}
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = latin1(authorization)
    return client.get("/token", environ_overrides=environ)


# -- 1. GET /token ---------------------------------------------------------------------------

def check_get_response(response: Any, decode: Decode, statuses: set[int] = GET_STATUSES) -> None:
    body = body_of(response, statuses)
    if response.status_code == 200:
        check_small_world_grant(check_token_body(body, decode))
    else:
        check_registry_error(response, body)


def fuzz_world(app: Flask) -> SmallWorld:
    """The small world, made once per test function (hypothesis runs many examples in it)."""
    world: SmallWorld | None = getattr(app, "_fuzz_world", None)
    if world is None:
        world = small_world(app)
        app._fuzz_world = world  # type: ignore[attr-defined]
    return world


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


# -- 2. POST /token --------------------------------------------------------------------------

FORM_KEYS = ["grant_type", "username", "password", "refresh_token", "service", "client_id",
             "scope", "scope", "access_type"]
form_keys = st.one_of(st.sampled_from(FORM_KEYS).map(utf8), keys)
form_values = st.one_of(
    st.sampled_from(["password", "refresh_token", "client_credentials", "registry", "alice",
                     "root", PASSWORD, "offline", "docker", "repository:alice/app:pull,push",
                     "registry:catalog:*"]).map(utf8),
    st.just(PAT), st.just(RT), values)
VALID_PASSWORD_FORM = [(b"grant_type", b"password"), (b"username", b"alice"),
                       (b"password", utf8(PASSWORD)), (b"service", b"registry"),
                       (b"client_id", b"containerd-client")]
VALID_REFRESH_FORM = [(b"grant_type", b"refresh_token"), (b"refresh_token", RT),
                      (b"service", b"registry"), (b"client_id", b"docker")]
CONTENT_TYPES = ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded",
                 "application/x-www-form-urlencoded; charset=latin-1",
                 "application/x-www-form-urlencoded; charset=\x00", "multipart/form-data",
                 "multipart/form-data; boundary=", "application/json", "text/plain", "",
                 "application/octet-stream", "x/\xff", "application/x-www-form-urlencoded;;;="]


def multipart(fields: list[tuple[bytes, bytes]], boundary: bytes, broken: bool,
              as_file: bool) -> bytes:
    parts = []
    for key, value in fields:
        disposition = b'form-data; name="' + key + b'"'
        if as_file:
            disposition += b'; filename="f\xff.txt"'
        parts.append(b"--" + boundary + b"\r\nContent-Disposition: " + disposition +
                     b"\r\n\r\n" + value + b"\r\n")
    body = b"".join(parts) + (b"" if broken else b"--" + boundary + b"--\r\n")
    return body


@st.composite
def post_requests(draw: st.DrawFn) -> tuple[bytes, str, dict[str, str], AuthSpec]:
    """A body, its content type, extra WSGI values and an Authorization header."""
    base = draw(st.sampled_from([VALID_PASSWORD_FORM, VALID_REFRESH_FORM, []]))
    extra = draw(st.lists(st.tuples(form_keys, form_values), max_size=6))
    fields = list(base)
    for key, value in extra:
        fields.insert(draw(st.integers(0, len(fields))), (key, value))
    kind = draw(st.sampled_from(["urlencoded", "urlencoded", "urlencoded", "multipart",
                                 "bytes"]))
    environ: dict[str, str] = {}
    if kind == "urlencoded":
        mode = draw(st.sampled_from(["quote", "typical", "raw"]))
        body = b"&".join(encode_pair(k, v, mode) for k, v in fields)
        content_type = draw(st.sampled_from(CONTENT_TYPES[:4] + CONTENT_TYPES[-1:]))
    elif kind == "multipart":
        boundary = draw(st.sampled_from([b"xyz", b"----WebKit\xff", b"a" * 80, b"b"]))
        body = multipart(fields, boundary, draw(st.booleans()), draw(st.booleans()))
        content_type = "multipart/form-data; boundary=" + latin1(
            draw(st.sampled_from([boundary, boundary, b"other", b"\x00"])))
    else:
        body = draw(st.one_of(st.binary(max_size=200), st.sampled_from(sorted(BIG)),
                              st.sampled_from([b"{}", b'{"grant_type": "password"}', b"\x00"])))
        content_type = draw(st.sampled_from(CONTENT_TYPES))
    if draw(st.integers(0, 5)) == 0:
        # A Content-Length that is no number, zero, or far beyond the limit. (One above the
        # body's length but under the limit is a client that hung up mid-body: werkzeug answers
        # its own 400, to nobody.)
        environ["CONTENT_LENGTH"] = draw(st.sampled_from(["abc", "-1", "0", "1e3", "",
                                                          "99999999999999999999"]))
    return body, content_type, environ, draw(authorizations)


def raw_post(client: FlaskClient, body: bytes, content_type: str,
             environ: dict[str, str] | None = None) -> Any:
    environ = {"CONTENT_TYPE": content_type, **(environ or {})}
    return client.post("/token", data=body, environ_overrides=environ)


def check_post_response(response: Any, decode: Decode) -> None:
    """OAuth2 errors, except 413: the body limit answers before the endpoint, in the registry
    format (tests/test_api_token.py::test_oversized_body_is_413_in_registry_error_format)."""
    body = body_of(response, POST_STATUSES)
    if response.status_code == 200:
        check_small_world_grant(check_token_body(body, decode))
        assert isinstance(body["scope"], str)
    elif response.status_code == 413 and "errors" in body:
        check_registry_error(response, body)
    else:
        check_oauth_error(response, body)


@NO_LOCKOUT
@FUZZ
@given(request=post_requests())
def test_post_token_survives_any_form(
        app: Flask, client: FlaskClient, decode: Decode,
        request: tuple[bytes, str, dict[str, str], AuthSpec]) -> None:
    world = fuzz_world(app)
    body, content_type, environ, authorization = request
    header = world.authorization(authorization)
    if header is not None:
        environ = {**environ, "HTTP_AUTHORIZATION": latin1(header)}
    body = world.fill(body)
    note(f"POST /token {content_type!r} {body[:500]!r} {environ!r:.300}")
    response = raw_post(client, body, content_type, environ)
    event(f"status {response.status_code}")
    check_post_response(response, decode)


@NO_LOCKOUT
@pytest.mark.parametrize(("body", "content_type"), [
    (b"grant_type=password&username=alice&password=%FF&service=registry&client_id=x",
     "application/x-www-form-urlencoded"),
    (b"grant_type=password&username=al\xffice&password=\xff&service=registry&client_id=x",
     "application/x-www-form-urlencoded"),
    (b"grant_type=password&username=alice%00&password=x%00&service=registry&client_id=x",
     "application/x-www-form-urlencoded"),
    (b"grant_type=refresh_token&refresh_token=%00&service=registry&client_id=docker",
     "application/x-www-form-urlencoded"),
    (b"grant_type=password&username=alice&password=correct+horse&service=registry"
     b"&client_id=x&scope=repository:alice/app:pull%00", "application/x-www-form-urlencoded"),
    (b"garbage", "multipart/form-data"),
    (b"garbage", "multipart/form-data; boundary=zz"),
    (b"--zz\r\nContent-Disposition: form-data; name=grant_type\r\n\r\npassword",
     "multipart/form-data; boundary=zz"),
    (b'{"grant_type": "password"}', "application/json"),
    (b"", ""),
])
def test_post_token_examples(client: FlaskClient, decode: Decode, app: Flask, body: bytes,
                             content_type: str) -> None:
    small_world(app)
    check_post_response(raw_post(client, body, content_type), decode)


# -- 3. the oracle -----------------------------------------------------------------------------

USERS = ["alice", "bob", "carol", "root", "robo", "john.smith"]
NAMESPACES = [*USERS, "team", "lib", "alice-x"]
#: Repository paths: nested ones, a single-component one named like a user, a namespace whose
#: name extends a user's.
PATHS = ["alice/app", "alice/sub/deep", "bob/app", "carol/web", "root/sys", "robo/ci",
         "team/app", "team/sub/x", "lib/base", "alice-x/app", "httpd", "alice", "team",
         "john.smith/app", "john.smith/bob/app", "localhost/app"]
UNKNOWN_PATHS = ["zed/app", "nobody/x", "bob/app2"]
TARGETS = PATHS + [f"{ns}/*" for ns in NAMESPACES]
GRANT_ACTIONS = {"pull": {"pull"}, "push": {"push"}, "delete": {"delete"},
                 "pull,push": {"pull", "push"}, "pull,delete": {"pull", "delete"},
                 "push,delete": {"push", "delete"}, "delete,pull,push": REPOSITORY_ACTIONS,
                 "*": REPOSITORY_ACTIONS}
PERMISSIONS = {"read": {"pull"}, "write": {"pull", "push"},
               "delete": {"pull", "push", "delete"}}
PREFIXES = ["", "", "", "myreg:5000/", "registry.example.com/", "localhost/", "localhost:5000/",
            "[::1]:5000/"]
REQUEST_ACTIONS = ["pull", "push", "delete", "*", "scanner-pull"]


@dataclass
class UserSpec:
    admin: bool
    disabled: bool
    robot: bool


@dataclass
class TokenSpec:
    owner: str
    permission: str
    targets: list[str]
    revoked: bool
    secret: str = ""


@dataclass
class RefreshSpec:
    owner: str
    secret: str = ""


@dataclass
class World:
    users: dict[str, UserSpec]
    repos: dict[str, str]
    grants: dict[tuple[str, str], frozenset[str]]
    tokens: list[TokenSpec]
    refresh: list[RefreshSpec]


@dataclass(frozen=True)
class ScopeSpec:
    """One requested scope, with the parts the oracle needs (it never parses the text)."""

    type: str
    resource_class: str | None
    name: str
    path: str | None  # the repository path, for repository scopes
    actions: tuple[str, ...]

    @property
    def text(self) -> str:
        cls = f"({self.resource_class})" if self.resource_class else ""
        return f"{self.type}{cls}:{self.name}:{','.join(self.actions)}"


@dataclass(frozen=True)
class Caller:
    kind: str  # anonymous, password, token, refresh, bearer
    user: str | None = None  # password: who; token: the Basic user name (None: the owner)
    good: bool = True  # password: the right one; refresh: the right client_id
    index: int = 0  # token or refresh token


@dataclass(frozen=True)
class TokenRequest:
    caller: Caller
    method: str
    scopes: tuple[ScopeSpec, ...]
    groups: tuple[int, ...]  # how many scopes go into each scope value (space-separated)
    offline: bool


@st.composite
def worlds(draw: st.DrawFn) -> World:
    users = {}
    for name in USERS:
        if name == "alice" or draw(st.booleans()):
            users[name] = UserSpec(admin=draw(st.sampled_from([False, False, False, True])),
                                   disabled=draw(st.sampled_from([False] * 4 + [True])),
                                   robot=name == "robo")
    present = sorted(users)
    repos = draw(st.dictionaries(st.sampled_from(PATHS), st.sampled_from(["public", "private"]),
                                 max_size=6))
    grants: dict[tuple[str, str], frozenset[str]] = {}
    for user, target, actions in draw(st.lists(st.tuples(
            st.sampled_from(present), st.sampled_from(TARGETS), st.sampled_from(
                sorted(GRANT_ACTIONS))), max_size=8)):
        grants[(user, target)] = frozenset(GRANT_ACTIONS[actions])
    tokens = [TokenSpec(owner, permission, targets, revoked) for owner, permission, targets, revoked
              in draw(st.lists(st.tuples(
                  st.sampled_from(present), st.sampled_from(sorted(PERMISSIONS)),
                  st.lists(st.sampled_from(TARGETS), max_size=3, unique=True),
                  st.sampled_from([False, False, False, True])),
                  max_size=4))]
    refresh = [RefreshSpec(owner) for owner in draw(st.lists(st.sampled_from(present),
                                                             max_size=2))]
    return World(users, repos, grants, tokens, refresh)


def scope_specs(world: World) -> st.SearchStrategy[ScopeSpec]:
    """Mostly repository scopes, mostly on paths the world says something about."""
    known = sorted({*world.repos, *(t for _, t in world.grants if not t.endswith("/*")),
                    *(f"{t[:-2]}/app" for _, t in world.grants if t.endswith("/*"))})
    paths = st.one_of(st.sampled_from(known), st.sampled_from(PATHS + UNKNOWN_PATHS)) if known \
        else st.sampled_from(PATHS + UNKNOWN_PATHS)
    actions = st.lists(st.sampled_from(REQUEST_ACTIONS), max_size=4)
    repository = st.builds(
        lambda cls, prefix, path, actions: ScopeSpec(
            "repository", cls, prefix + path, registry_path(prefix + path), tuple(actions)),
        st.sampled_from([None, None, None, "plugin"]), st.sampled_from(PREFIXES), paths,
        actions)
    catalog = st.builds(
        lambda cls, actions: ScopeSpec("registry", cls, "catalog", None, tuple(actions)),
        st.sampled_from([None, None, "x"]), st.lists(st.sampled_from(REQUEST_ACTIONS),
                                                     max_size=2))
    other = st.builds(
        lambda kind, name, actions: ScopeSpec(kind, None, name, None, tuple(actions)),
        st.sampled_from(["registry", "foo", "repositories"]),
        st.sampled_from([*PATHS, "other", "myreg:5000/alice/app"]), actions)
    return st.one_of(repository, repository, repository, repository, catalog, other)


@st.composite
def callers(draw: st.DrawFn, world: World) -> Caller:
    """Mostly callers who get in, so that most requests test the decision, not the login."""
    kinds = ["anonymous", "password", "password", "password", "password", "password"]
    if world.tokens:
        kinds += ["token", "token", "token", "bearer"]
    if world.refresh:
        kinds += ["refresh"]
    kind = draw(st.sampled_from(kinds))
    if kind == "anonymous":
        return Caller("anonymous")
    if kind == "password":
        enabled = sorted(name for name, user in world.users.items()
                         if not user.disabled and not user.robot)
        users = st.sampled_from([*USERS, "nobody"])
        user = draw(st.one_of(st.sampled_from(enabled), st.sampled_from(enabled), users)
                    if enabled else users)
        return Caller("password", user, draw(st.sampled_from([True, True, True, True, False])))
    if kind == "refresh":
        return Caller("refresh", None, draw(st.sampled_from([True, True, True, False])),
                      draw(st.integers(0, len(world.refresh) - 1)))
    index = draw(st.integers(0, len(world.tokens) - 1))
    if kind == "bearer":
        return Caller("bearer", None, True, index)
    return Caller("token", draw(st.sampled_from([None, None, None, None, "alice", "bob"])), True,
                  index)


@st.composite
def token_requests(draw: st.DrawFn, world: World) -> TokenRequest:
    caller = draw(callers(world))
    if caller.kind in ("anonymous", "bearer"):
        method = "GET"
    elif caller.kind == "refresh":
        method = "POST"
    else:
        method = draw(st.sampled_from(["GET", "POST"]))
    scopes = tuple(draw(st.lists(scope_specs(world), max_size=6)))
    groups: list[int] = []
    left = len(scopes)
    while left:
        size = draw(st.integers(1, left))
        groups.append(size)
        left -= size
    return TokenRequest(caller, method, scopes, tuple(groups), draw(st.booleans()))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[World, list[TokenRequest]]:
    world = draw(worlds())
    return world, draw(st.lists(token_requests(world), min_size=1, max_size=6))


def build(state: Services, world: World) -> None:
    """Make ``world`` true through the services; the model follows what they allowed."""
    for name, user in world.users.items():
        state.accounts.create_user(name, None if user.robot else PASSWORD, admin=user.admin,
                                   robot=user.robot)
    for path, visibility in world.repos.items():
        state.repos.create(path, visibility)
    for (grantee, target), actions in world.grants.items():
        state.repos.grant(grantee, target, sorted(actions))
    for number, token in enumerate(world.tokens):
        info, token.secret = state.access_tokens.create(
            token.owner, f"t{number}", token.permission, repositories=token.targets)
        if token.revoked:
            state.access_tokens.revoke(info.id)
    for refresh in world.refresh:
        refresh.secret = state.refresh_tokens.issue(refresh.owner, "registry", "docker")
    for name, user in world.users.items():
        if user.disabled:
            try:
                state.accounts.set_disabled(name)
            except Conflict:  # the last enabled admin stays enabled
                user.disabled = False


@dataclass(frozen=True)
class Who:
    """The oracle's idea of the authenticated caller."""

    name: str | None
    admin: bool = False
    token: TokenSpec | None = None
    password_login: bool = False


def authenticate(world: World, caller: Caller) -> Who | None:
    """Who the caller is, or None when the request must be refused with 401."""
    if caller.kind == "anonymous":
        return Who(None)
    if caller.kind == "bearer":
        return None  # /token takes Basic credentials only
    if caller.kind == "password":
        user = world.users.get(caller.user or "")
        if user is None or user.robot or user.disabled or not caller.good:
            return None
        return Who(caller.user, user.admin, password_login=True)
    if caller.kind == "token":
        token = world.tokens[caller.index]
        owner = world.users[token.owner]
        if token.revoked or owner.disabled or caller.user not in (None, token.owner):
            return None
        return Who(token.owner, owner.admin, token)
    refresh = world.refresh[caller.index]
    owner = world.users[refresh.owner]
    if owner.disabled or not caller.good:
        return None
    return Who(refresh.owner, owner.admin)


def covers(target: str, path: str) -> bool:
    if target.endswith("/*"):
        return path.startswith(target[:-1])
    return target == path


def held(world: World, who: Who, path: str) -> set[str]:
    """Repository actions ``who`` holds on ``path`` under the rules."""
    owner, slash, _ = path.partition("/")
    if who.admin or (who.name is not None and slash and owner == who.name):
        actions = set(REPOSITORY_ACTIONS)
    else:
        actions = {"pull"} if world.repos.get(path) == "public" else set()
        for (user, target), granted in world.grants.items():
            if user == who.name and covers(target, path):
                actions |= granted
    if who.token is not None:
        in_reach = not who.token.targets or any(covers(t, path) for t in who.token.targets)
        actions &= PERMISSIONS[who.token.permission] if in_reach else set()
    return actions


def expected_actions(world: World, who: Who, kind: str, name: str, path: str | None,
                     requested: set[str]) -> set[str]:
    if (kind, name) == ("registry", "catalog"):
        return requested & {"*"} if who.admin and who.token is None else set()
    if kind != "repository" or path is None:
        return set()
    holds = held(world, who, path)
    if "*" in requested:
        return {"*"} if holds == REPOSITORY_ACTIONS else holds
    return requested & holds


def expected_access(world: World, who: Who, scopes: tuple[ScopeSpec, ...],
                    ) -> list[dict[str, Any]]:
    """One entry per requested (type, name), first appearance first, actions merged."""
    merged: dict[tuple[str, str], tuple[str | None, set[str]]] = {}
    for scope in scopes:
        path, actions = merged.get((scope.type, scope.name), (scope.path, set()))
        merged[(scope.type, scope.name)] = (path, actions | set(scope.actions))
    return [{"type": kind, "name": name,
             "actions": sorted(expected_actions(world, who, kind, name, path, requested))}
            for (kind, name), (path, requested) in merged.items()]


def scope_values(request: TokenRequest) -> list[str]:
    values, start = [], 0
    for size in request.groups:
        values.append(" ".join(s.text for s in request.scopes[start:start + size]))
        start += size
    return values


def send(client: FlaskClient, world: World, request: TokenRequest) -> Any:
    caller = request.caller
    scopes = scope_values(request)
    if request.method == "GET":
        query: list[tuple[str, str]] = [("service", "registry")]
        query += [("scope", value) for value in scopes]
        if request.offline:
            query += [("offline_token", "true"), ("client_id", "docker")]
        headers = {}
        if caller.kind == "password":
            headers["Authorization"] = basic(caller.user or "", PASSWORD if caller.good
                                             else "wrong password")
        elif caller.kind == "token":
            token = world.tokens[caller.index]
            headers["Authorization"] = basic(caller.user or token.owner, token.secret)
        elif caller.kind == "bearer":
            headers["Authorization"] = "Bearer " + world.tokens[caller.index].secret
        return client.get("/token?" + urlencode(query), headers=headers)
    form: list[tuple[str, str]] = [("service", "registry")]
    if caller.kind == "refresh":
        form += [("grant_type", "refresh_token"),
                 ("refresh_token", world.refresh[caller.index].secret),
                 ("client_id", "docker" if caller.good else "containerd-client")]
    else:
        if caller.kind == "password":
            username = caller.user or ""
            password = PASSWORD if caller.good else "wrong password"
        else:
            token = world.tokens[caller.index]
            username, password = caller.user or token.owner, token.secret
        form += [("grant_type", "password"), ("username", username), ("password", password),
                 ("client_id", "containerd-client")]
    form += [("scope", value) for value in scopes]
    if request.offline:
        form.append(("access_type", "offline"))
    return client.post("/token", data=urlencode(form),
                       content_type="application/x-www-form-urlencoded")


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def check_against_oracle(world: World, request: TokenRequest, response: Any,
                         decode: Decode) -> None:
    who = authenticate(world, request.caller)
    statuses = {401} if who is None else {200}
    body = body_of(response, statuses)
    if who is None:
        if request.method == "GET":
            check_registry_error(response, body)
        else:
            check_oauth_error(response, body)
            assert body["error"] == "invalid_grant"
        return
    claims = check_token_body(body, decode)
    expected = expected_access(world, who, request.scopes)
    assert claims["sub"] == (who.name or "")
    assert claims["access"] == expected, {"granted": claims["access"], "expected": expected}
    if request.method == "POST":
        assert body["scope"] == " ".join(
            f"{e['type']}:{e['name']}:{','.join(e['actions'])}" for e in expected
            if e["actions"])
    if request.caller.kind == "refresh":
        assert body["refresh_token"] == world.refresh[request.caller.index].secret
    else:
        assert ("refresh_token" in body) == (request.offline and who.password_login), body


@pytest.fixture
def fresh_database(app: Flask) -> Iterator[Callable[[], Services]]:
    """Empties the database; hypothesis runs many examples in one test function."""

    def reset() -> Services:
        set_origin(Origin())
        db.session.remove()
        if app.config["DATABASE_URL"]:
            empty_tables()
        else:
            db.drop_all()
            db.create_all()
        return services_of(app)

    with app.app_context():
        yield reset


@NO_LOCKOUT
@settings(FUZZ, max_examples=200)
@given(scenario=scenarios())
def test_every_granted_action_matches_the_oracle(
        client: FlaskClient, decode: Decode, fresh_database: Callable[[], Services],
        scenario: tuple[World, list[TokenRequest]]) -> None:
    world, requests = scenario
    state = fresh_database()
    build(state, world)
    db.session.remove()
    note(f"world={world}")
    for request in requests:
        note(f"request={request} scope values={scope_values(request)}")
        response = send(client, world, request)
        event(f"status {response.status_code}")
        if response.status_code == 200:
            granted = sum(bool(e["actions"]) for e in decode(response.json["token"])["access"])
            event("some actions granted" if granted else "nothing granted")
        check_against_oracle(world, request, response, decode)


@NO_LOCKOUT
def test_oracle_catches_over_and_under_granting(client: FlaskClient, decode: Decode,
                                               fresh_database: Callable[[], Services]) -> None:
    """Known answers, checked against the service and the oracle alike: the corners the random
    worlds reach only now and then (namespace prefixes, tokens of admins, single-component
    names)."""
    world = World(
        users={"alice": UserSpec(False, False, False), "root": UserSpec(True, False, False),
               "bob": UserSpec(False, False, False),
               "john.smith": UserSpec(False, False, False)},
        repos={"team/app": "public", "alice-x/app": "public"},
        grants={("bob", "alice/*"): frozenset({"pull"}),
                ("bob", "team/app"): frozenset({"push", "delete"})},
        tokens=[TokenSpec("alice", "read", ["alice/app"], False),
                TokenSpec("root", "delete", ["alice/*"], False)], refresh=[])
    build(fresh_database(), world)
    db.session.remove()
    alice, root, bob, john = (Caller("password", name)
                              for name in ("alice", "root", "bob", "john.smith"))
    alice_token, root_token = Caller("token", None, True, 0), Caller("token", None, True, 1)
    cases = [
        (bob, "repository:alice/app:*", [["pull"]]),
        (bob, "repository:alice-x/app:push", [[]]),
        (bob, "repository:team/app:*", [["*"]]),
        (bob, "repository:team/app:pull,scanner-pull", [["pull"]]),
        (Caller("anonymous"), "repository:team/app:* registry:catalog:*", [["pull"], []]),
        (root, "registry:catalog:* repository:x:push", [["*"], ["push"]]),
        (root, "registry:catalog:pull repository(plugin):x:*", [[], ["*"]]),
        (alice, "repository:alice:push repository:alice/sub/deep:*", [[], ["*"]]),
        (alice, "repository:localhost:5000/alice/a:delete repository:alice-x/app:push",
         [[], []]),
        # names are the registry's names: nothing is stripped (issue 10, finding 2)
        (john, "repository:john.smith/app:* repository:john.smith/bob/app:push", [["*"], ["push"]]),
        (bob, "repository:john.smith/bob/app:* repository:localhost/bob/app:push", [[], []]),
        (Caller("anonymous"), "repository:registry.example.com/team/app:pull", [[]]),
        (root, "repository:myreg:5000/x:* repository:registry.example.com/x:*", [[], ["*"]]),
        (alice_token, "repository:alice/app:* registry:catalog:*", [["pull"], []]),
        (alice_token, "repository:alice/other:pull", [[]]),
        (root_token, "registry:catalog:* repository:alice/a:*", [[], ["*"]]),
        (root_token, "repository:alice-x/app:pull repository:team/app:pull", [[], []]),
    ]
    for caller, scope, actions in cases:
        response = client.get("/token", query_string={"service": "registry", "scope": scope},
                              headers=send_headers(world, caller))
        granted = [e["actions"] for e in decode(body_of(response, {200})["token"])["access"]]
        assert granted == actions, (caller, scope, granted)
        who = authenticate(world, caller)
        assert who is not None
        specs = tuple(spec_of(text) for text in scope.split())
        assert [e["actions"] for e in expected_access(world, who, specs)] == actions, scope


def send_headers(world: World, caller: Caller) -> dict[str, str]:
    if caller.kind == "password":
        return {"Authorization": basic(caller.user or "", PASSWORD)}
    if caller.kind == "token":
        token = world.tokens[caller.index]
        return {"Authorization": basic(token.owner, token.secret)}
    return {}


def spec_of(text: str) -> ScopeSpec:
    """A hand-written scope read the way the oracle reads one (``type(class):name:actions``)."""
    kind, rest = text.split(":", 1)
    kind, _, resource_class = kind.partition("(")
    name, actions = rest.rsplit(":", 1)
    path = registry_path(name) if kind == "repository" else None
    return ScopeSpec(kind, resource_class.rstrip(")") or None, name, path,
                     tuple(a for a in actions.split(",") if a))


# -- 4. limits -------------------------------------------------------------------------------

def many(count: int) -> str:
    return " ".join(f"repository:alice/r{i}:pull" for i in range(count))


@NO_LOCKOUT
def test_more_than_max_scopes_is_400_invalid_scope(client: FlaskClient, make_user: Any,
                                                   decode: Decode) -> None:
    make_user("alice")
    ok = client.get("/token", query_string={"service": "registry", "scope": many(MAX_SCOPES)},
                    auth=("alice", PASSWORD))
    assert len(decode(body_of(ok, {200})["token"])["access"]) == MAX_SCOPES
    too_many = client.get("/token", query_string={"service": "registry",
                                                  "scope": many(MAX_SCOPES + 1)},
                          auth=("alice", PASSWORD))
    body = body_of(too_many, {400})
    check_registry_error(too_many, body)
    assert body["errors"][0]["code"] == "INVALID_SCOPE"
    assert str(MAX_SCOPES) in body["errors"][0]["message"]
    posted = client.post("/token", data={
        "grant_type": "password", "username": "alice", "password": PASSWORD,
        "service": "registry", "client_id": "x", "scope": many(MAX_SCOPES + 1)})
    body = body_of(posted, {400})
    check_oauth_error(posted, body)
    assert body["error"] == "invalid_scope"


def test_thousands_of_scope_parameters_are_refused_or_merged(client: FlaskClient,
                                                             decode: Decode) -> None:
    distinct = "&".join(f"scope=repository:alice/r{i}:pull" for i in range(5000))
    response = client.get("/token?service=registry&" + distinct)
    assert body_of(response, {400})["errors"][0]["code"] == "INVALID_SCOPE"
    same = "&".join("scope=repository:alice/r:pull" for _ in range(5000))
    response = client.get("/token?service=registry&" + same)
    assert len(decode(body_of(response, {200})["token"])["access"]) == 1


@pytest.mark.parametrize("query", [
    "service=registry&scope=repository:alice/" + "a" * ONE_MIB + ":pull",
    "service=registry&scope=foo:" + "a" * ONE_MIB + ":pull",
    "service=" + "r" * ONE_MIB,
    "service=registry&account=" + "a" * ONE_MIB,
], ids=["repository name", "other name", "service", "account"])
def test_huge_query_values_get_a_short_clear_error(client: FlaskClient, query: str) -> None:
    response = client.get("/token?" + query)
    body = body_of(response, {200, 400, 413})
    if response.status_code != 200:
        check_registry_error(response, body)
    assert len(response.get_data()) < 4096


def test_huge_authorization_header_is_refused_cleanly(client: FlaskClient) -> None:
    credentials = base64.b64encode(b"alice:" + b"x" * ONE_MIB).decode()
    response = client.get("/token?service=registry",
                          headers={"Authorization": "Basic " + credentials})
    body = body_of(response, {400, 401, 413})
    check_registry_error(response, body)


FORM = "application/x-www-form-urlencoded"
LARGE_BODIES = {
    "urlencoded, one huge field": (
        b"grant_type=password&username=alice&service=registry&client_id=x&password="
        + b"x" * ONE_MIB, FORM),
    "urlencoded, huge scope": (
        b"grant_type=password&username=alice&password=correct+horse&service=registry"
        b"&client_id=x&scope=" + b"repository:alice/a:pull+" * (ONE_MIB // 24), FORM),
    "multipart, huge file": (
        multipart([(b"grant_type", b"password"), (b"junk", b"x" * ONE_MIB)], b"zz", False, True),
        "multipart/form-data; boundary=zz"),
    "multipart, huge field": (
        multipart([(b"grant_type", b"password"), (b"junk", b"x" * ONE_MIB)], b"zz", False,
                  False), "multipart/form-data; boundary=zz"),
    "json": (b'{"junk": "' + b"x" * ONE_MIB + b'"}', "application/json"),
    "octet-stream": (b"\x00" * ONE_MIB, "application/octet-stream"),
    "no content type": (b"x" * ONE_MIB, ""),
}


@NO_LOCKOUT
@pytest.mark.parametrize("name", sorted(LARGE_BODIES))
def test_post_body_over_the_size_limit_is_413(client: FlaskClient, make_user: Any,
                                              decode: Decode, name: str) -> None:
    """A 1 MiB body is far above any real token request (see below): 413 whatever its
    content type (MAX_REQUEST_BYTES; Flask's MAX_FORM_MEMORY_SIZE alone would leave file parts
    and non-form bodies unbounded)."""
    make_user("alice")
    body, content_type = LARGE_BODIES[name]
    response = raw_post(client, body, content_type)
    check_post_response(response, decode)
    assert response.status_code == 413


@NO_LOCKOUT
def test_chunked_body_over_the_limit_is_413_not_truncated(
        client: FlaskClient, make_user: Any, app: Flask, decode: Decode) -> None:
    """A body without Content-Length (``Transfer-Encoding: chunked``, which the server passes
    on with ``wsgi.input_terminated``) is held to the same limit: refused, not cut at the limit
    and then served."""
    make_user("alice")
    body = (b"grant_type=password&username=alice&password=correct+horse&service=registry"
            b"&client_id=x&scope=repository:alice/app:pull&junk=" + b"x" * (2 * ONE_MIB))
    response = client.post("/token", input_stream=io.BytesIO(body), environ_overrides={
        "CONTENT_TYPE": FORM, "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input_terminated": True})
    check_post_response(response, decode)
    assert response.status_code == 413, (
        f"a {len(body)}-byte chunked body got {response.status_code}, over a limit of "
        f"{app.config['MAX_CONTENT_LENGTH']} bytes")


@NO_LOCKOUT
def test_largest_real_request_is_not_refused_as_too_large(client: FlaskClient, make_user: Any,
                                                          decode: Decode) -> None:
    """64 scopes with 255-character names and every optional field: about 18 KB."""
    make_user("alice")
    names = [f"alice/{i:02d}" + "a" * (MAX_NAME_LENGTH - 9) for i in range(MAX_SCOPES)]
    scope = " ".join(f"repository:{n}:pull,push,delete" for n in names)
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD,
            "service": "registry", "client_id": "containerd-client", "access_type": "offline",
            "scope": scope}
    response = client.post("/token", data=form)
    assert len(decode(body_of(response, {200})["token"])["access"]) == MAX_SCOPES
    query = urlencode({"service": "registry", "scope": scope, "account": "alice",
                       "client_id": "docker", "offline_token": "true"})
    response = client.get("/token?" + query, auth=("alice", PASSWORD))
    assert len(decode(body_of(response, {200})["token"])["access"]) == MAX_SCOPES


# -- the scope parser --------------------------------------------------------------------------

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


# -- the admin API, raw --------------------------------------------------------------------------

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
ADMIN_STATUSES = {200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 422, 429}
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
        header: bytes | None = utf8("Basic " + base64.b64encode(
            f"{authorization}:{PASSWORD}".encode()).decode())
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


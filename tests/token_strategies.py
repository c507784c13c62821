"""What the fuzz tests send (tests/test_token_fuzz_*.py): raw request material and the
hypothesis strategies that combine it, the settings they run under, and the small world
(alice, root, the public alice/pub, one access and one refresh token) they run against.

Requests are built as raw WSGI values (``QUERY_STRING``, ``HTTP_AUTHORIZATION``, body bytes) so
that invalid UTF-8, NUL bytes and broken percent-encodings reach the app as a real server would
pass them on.
"""

import base64
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from authsvc.core.scopes import MAX_SCOPES
from authsvc.db.models import db
from authsvc.db.services import Services, services_of
from tests.conftest import PASSWORD

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large,
                                       HealthCheck.large_base_example,
                                       HealthCheck.filter_too_much])

#: No lockout: random bad credentials must not turn later requests into 429.
NO_LOCKOUT = pytest.mark.app_config(LOCKOUT_ATTEMPTS=0, LOCKOUT_ADDRESS_ATTEMPTS=0)

PAT = b"__PAT__"  # replaced by a real access token secret of alice at run time
RT = b"__RT__"  # replaced by a real refresh token secret of alice at run time

#: The actions requests name: the registry's three, ``*``, and one that no rule knows.
REQUEST_ACTIONS = ["pull", "push", "delete", "*", "scanner-pull"]


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



def fuzz_world(app: Flask) -> SmallWorld:
    """The small world, made once per test function (hypothesis runs many examples in it)."""
    world: SmallWorld | None = getattr(app, "_fuzz_world", None)
    if world is None:
        world = small_world(app)
        app._fuzz_world = world  # type: ignore[attr-defined]
    return world


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


def raw_post(client: FlaskClient, body: bytes, content_type: str,
             environ: dict[str, str] | None = None) -> Any:
    environ = {"CONTENT_TYPE": content_type, **(environ or {})}
    return client.post("/token", data=body, environ_overrides=environ)

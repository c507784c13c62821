"""Fuzzing ``POST /token``: any form (urlencoded, multipart, broken or not a form at all, any
content type and length, any Authorization header) gets an OAuth2 error (RFC 6749 §5.2), the
body limit's registry-format 413, or a token inside what its subject may hold; never a 5xx or a
stack trace.
"""

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import event, given, note
from hypothesis import strategies as st

from tests.conftest import PASSWORD
from tests.token_checks import check_post_response
from tests.token_helpers import Decode
from tests.token_strategies import (
    BIG,
    FUZZ,
    NO_LOCKOUT,
    PAT,
    RT,
    AuthSpec,
    authorizations,
    encode_pair,
    fuzz_world,
    keys,
    latin1,
    multipart,
    raw_post,
    small_world,
    utf8,
    values,
)

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

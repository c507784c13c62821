"""The realm's limits: at most ``MAX_SCOPES`` distinct resources per request, short clear errors
for huge query values and headers, and 413 for a body over the size limit (chunked too),
while the largest real token request still passes.
"""

import base64
import io
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.core.scopes import MAX_NAME_LENGTH, MAX_SCOPES
from tests.conftest import PASSWORD
from tests.token_checks import body_of, check_oauth_error, check_post_response, check_registry_error
from tests.token_helpers import Decode
from tests.token_strategies import NO_LOCKOUT, multipart, raw_post

ONE_MIB = 1 << 20


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

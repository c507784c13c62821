"""Error answers in each wire format (``authsvc.core.error_bodies``), pure; and the same bytes
from every part that sends them: the Flask app, the ``/token`` handler, the body limit and the
server's RSGI bridge."""

import io
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.core.error_bodies import (
    CHALLENGE,
    INTERNAL_ERROR,
    ErrorAnswer,
    api_answer,
    body_too_large,
    body_too_slow,
    database_unavailable,
    encode,
    invalid_content_length,
    oauth_answer,
    registry_answer,
    registry_error,
)
from authsvc.errors import (
    AuthenticationFailed,
    AuthsvcError,
    Conflict,
    Forbidden,
    InvalidName,
    InvalidRequest,
    InvalidScope,
    MalformedBody,
    NotFound,
    TooManyAttempts,
)
from authsvc.web.api import response_for
from authsvc.web.api.body_limit import BodyLimit


class UnsupportedGrant(InvalidRequest):
    code = "UNSUPPORTED_GRANT_TYPE"


def headers_of(answer: ErrorAnswer) -> dict[str, str]:
    return dict(answer.headers)


JSON_ONLY = {"Content-Type": "application/json"}

#: error → (registry status, API status, OAuth2 error, headers beyond Content-Type)
ERRORS: list[tuple[AuthsvcError, int, int, str, dict[str, str]]] = [
    (AuthenticationFailed(), 401, 401, "invalid_grant", {"WWW-Authenticate": CHALLENGE}),
    (TooManyAttempts(30), 429, 429, "temporarily_unavailable", {"Retry-After": "30"}),
    (InvalidScope("bad scope"), 400, 422, "invalid_scope", {}),
    (UnsupportedGrant("no such grant"), 400, 422, "unsupported_grant_type", {}),
    (InvalidRequest("missing"), 400, 422, "invalid_request", {}),
    (InvalidName("bad name"), 400, 422, "invalid_request", {}),
    (MalformedBody("not JSON"), 400, 400, "invalid_request", {}),
    (Forbidden("no"), 403, 403, "invalid_request", {}),
    (NotFound("gone"), 404, 404, "invalid_request", {}),
    (Conflict("exists"), 409, 409, "invalid_request", {}),
]


@pytest.mark.parametrize("error,status,api_status,_oauth,extra", ERRORS)
def test_registry_and_api_answers(error: AuthsvcError, status: int, api_status: int,
                                  _oauth: str, extra: dict[str, str]) -> None:
    body = {"errors": [{"code": error.code, "message": error.message}]}
    for answer, expected in ((registry_answer(error), status), (api_answer(error), api_status)):
        assert answer.status == expected
        assert json.loads(answer.body) == body
        assert headers_of(answer) == {**JSON_ONLY, **extra}


@pytest.mark.parametrize("error,status,_api,oauth,extra", ERRORS)
def test_oauth_answers_carry_no_challenge(error: AuthsvcError, status: int, _api: int,
                                          oauth: str, extra: dict[str, str]) -> None:
    """RFC 6749 §5.2; a refused login is 401 (containerd then falls back to GET) without
    ``WWW-Authenticate``."""
    answer = oauth_answer(error)
    assert answer.status == status
    assert json.loads(answer.body) == {"error": oauth, "error_description": error.message}
    assert headers_of(answer) == {**JSON_ONLY,
                                  **{k: v for k, v in extra.items() if k != "WWW-Authenticate"}}


@pytest.mark.parametrize("answer,status,code,headers", [
    (INTERNAL_ERROR, 500, "INTERNAL_ERROR", {}),
    (database_unavailable(), 503, "UNAVAILABLE", {"Retry-After": "5"}),
    (body_too_large(1024), 413, "REQUEST_ENTITY_TOO_LARGE", {"Connection": "close"}),
    (body_too_slow(2.5), 408, "REQUEST_TIMEOUT", {"Connection": "close"}),
    (invalid_content_length(), 400, "BAD_REQUEST", {"Connection": "close"}),
    (registry_error(405, "METHOD_NOT_ALLOWED", "no", allow=["GET", "POST"]), 405,
     "METHOD_NOT_ALLOWED", {"Allow": "GET, POST"}),
])
def test_answers_that_come_from_no_exception(answer: ErrorAnswer, status: int, code: str,
                                             headers: dict[str, str]) -> None:
    assert answer.status == status
    assert json.loads(answer.body)["errors"][0]["code"] == code
    assert headers_of(answer) == {**JSON_ONLY, **headers}


def test_messages_name_the_limits() -> None:
    assert json.loads(body_too_large(1024).body)["errors"][0]["message"] == (
        "the request body is larger than 1024 bytes")
    assert json.loads(body_too_slow(2.5).body)["errors"][0]["message"] == (
        "the request body did not arrive within 2.5 seconds")


def test_bodies_are_flasks_json_and_wsgi_headers_carry_the_length() -> None:
    assert encode({"b": 1, "a": "é"}) == b'{"a":"\\u00e9","b":1}\n'
    answer = body_too_large(10)
    assert answer.status_line == "413 Request Entity Too Large"
    assert ErrorAnswer(599, (), b"").status_line == "599 Unknown"
    assert answer.wsgi_headers()[-1] == ("Content-Length", str(len(answer.body)))


def test_the_flask_handler_sends_the_answer_as_built(app: Flask) -> None:
    """``response_for`` only wraps the answer: the same status, headers and bytes."""
    with app.test_request_context():
        response = response_for(TooManyAttempts(7))
    assert response.status_code == 429
    assert response.get_data() == registry_answer(TooManyAttempts(7)).body
    assert response.headers["Retry-After"] == "7"
    assert response.headers["Content-Type"] == "application/json"


def test_the_body_limit_answers_413_as_built(app: Flask) -> None:
    """A chunked body over the limit (refused by the body limit before the app) gets the
    bytes the core builds; its Content-Length matches."""
    limit = app.config["MAX_CONTENT_LENGTH"]
    started: list[Any] = []
    body = BodyLimit(app.wsgi_app, limit)(
        {"REQUEST_METHOD": "PUT", "PATH_INFO": "/api/v1/users/x", "wsgi.input_terminated": True,
         "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"x" * (limit + 1))},
        lambda status, headers: started.extend([status, headers]))
    expected = body_too_large(limit)
    assert list(body) == [expected.body]
    assert started == [expected.status_line, expected.wsgi_headers()]


def test_the_token_handler_writes_the_answers_as_built(client: FlaskClient) -> None:
    """``/token`` writes its errors straight to WSGI: the bytes built here, with their length,
    the headers their status needs and HSTS; a HEAD gets the headers alone."""
    refused = AuthenticationFailed()
    for method in ("GET", "HEAD"):
        response = client.open("/token?service=registry", method=method, auth=("nobody", "x"))
        expected = registry_answer(refused)
        assert response.status_code == 401
        assert response.get_data() == (expected.body if method == "GET" else b"")
        assert response.headers["Content-Length"] == str(len(expected.body))
        assert response.headers["WWW-Authenticate"] == CHALLENGE
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    grant = client.post("/token", data={"grant_type": "password", "username": "nobody",
                                        "password": "x", "service": "registry",
                                        "client_id": "test"})
    assert grant.status_code == 401 and "WWW-Authenticate" not in grant.headers
    assert grant.get_data() == oauth_answer(refused).body

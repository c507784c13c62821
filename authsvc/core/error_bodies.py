"""Every error answer authsvc sends, in the wire format of the route it answers, built here only.

- The registry's, ``{"errors": [{"code", "message"}]}`` (distribution's token spec): ``GET
  /token``, every route outside the API, and the server's refusals before the app runs.
- The API's (``/api/v1``): the same, with validation errors 422 rather than 400.
- OAuth2's, ``{"error", "error_description"}`` (RFC 6749 §5.2): the ``POST /token`` grants.

Pure: bytes and header lists, no web framework, so the Flask app (``authsvc.web.api``), the
``/token`` WSGI handler and the RSGI bridge (``authsvc.server``) send the same bytes. The headers
a status needs are decided here as well: ``WWW-Authenticate`` on a 401 (registry and API form),
``Retry-After`` on a 429 or 503, ``Allow`` on a 405.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus

from authsvc.errors import AuthsvcError, MalformedBody, TooManyAttempts

Headers = tuple[tuple[str, str], ...]

JSON = "application/json"
#: The challenge of a 401 in registry form: the docker client answers it with Basic credentials.
CHALLENGE = 'Basic realm="authsvc"'
#: Seconds a client is told to wait while the database is unreachable.
DATABASE_RETRY_AFTER = 5
#: Registry error codes with an OAuth2 error of their own; any other is ``invalid_request``.
OAUTH_ERRORS = {
    "UNAUTHORIZED": "invalid_grant",  # answered 401, so that containerd falls back to GET
    "INVALID_SCOPE": "invalid_scope",
    "UNSUPPORTED_GRANT_TYPE": "unsupported_grant_type",
    "TOOMANYREQUESTS": "temporarily_unavailable",
}


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """One error response: its status, its headers (``Content-Type`` and those its status
    needs; no ``Content-Length``) and its JSON body."""

    status: int
    headers: Headers
    body: bytes

    @property
    def status_line(self) -> str:
        """The WSGI status, e.g. ``413 Request Entity Too Large`` (``599 Unknown`` for a status
        without a name)."""
        try:
            return f"{self.status} {HTTPStatus(self.status).phrase}"
        except ValueError:
            return f"{self.status} Unknown"

    def wsgi_headers(self) -> list[tuple[str, str]]:
        """The headers with ``Content-Length``, for writing the answer straight to WSGI."""
        return [*self.headers, ("Content-Length", str(len(self.body)))]


def encode(body: Mapping[str, object]) -> bytes:
    """``body`` as compact JSON with sorted keys and a final newline: the bytes of Flask's
    ``jsonify``, whichever part of authsvc answers."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode() + b"\n"


def _answer(status: int, body: Mapping[str, object], *, challenge: bool = False,
            retry_after: int | None = None, allow: Iterable[str] = (),
            close: bool = False) -> ErrorAnswer:
    """The answer with the headers its status needs: the challenge on a 401 when
    ``challenge``, ``Retry-After`` (429, 503) and ``Allow`` (405) when given."""
    headers = [("Content-Type", JSON)]
    if challenge and status == 401:
        headers.append(("WWW-Authenticate", CHALLENGE))
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    methods = ", ".join(allow)
    if methods:
        headers.append(("Allow", methods))
    if close:
        headers.append(("Connection", "close"))
    return ErrorAnswer(status, tuple(headers), encode(body))


def registry_error(status: int, code: str, message: str, *, retry_after: int | None = None,
                   allow: Iterable[str] = (), close: bool = False) -> ErrorAnswer:
    """``{"errors": [{"code": code, "message": message}]}``; a 401 carries the Basic
    challenge, a 405 ``Allow: allow``, a 429 or 503 ``Retry-After``; ``close`` adds
    ``Connection: close`` (for a request whose body was not read)."""
    return _answer(status, {"errors": [{"code": code, "message": message}]}, challenge=True,
                   retry_after=retry_after, allow=allow, close=close)


def _retry_after(error: AuthsvcError) -> int | None:
    return error.retry_after if isinstance(error, TooManyAttempts) else None


def registry_answer(error: AuthsvcError) -> ErrorAnswer:
    """``error`` in the registry's format, with its own status."""
    return registry_error(error.status, error.code, error.message,
                          retry_after=_retry_after(error))


def api_answer(error: AuthsvcError) -> ErrorAnswer:
    """``error`` in the API's format: the registry's, with a validation error (400) answered
    422, but a body that is not a JSON object (MalformedBody) still 400."""
    status = error.status
    if status == 400 and not isinstance(error, MalformedBody):
        status = 422
    return registry_error(status, error.code, error.message, retry_after=_retry_after(error))


def oauth_error(status: int, code: str, message: str, *,
                retry_after: int | None = None) -> ErrorAnswer:
    """``{"error": …, "error_description": message}`` (RFC 6749 §5.2), the OAuth2 error of
    the registry error ``code`` (OAUTH_ERRORS). A 401 carries no challenge: the client sent
    no Authorization header, and containerd falls back to GET on it; a 429 has Retry-After."""
    return _answer(status, {"error": OAUTH_ERRORS.get(code, "invalid_request"),
                            "error_description": message}, retry_after=retry_after)


def oauth_answer(error: AuthsvcError) -> ErrorAnswer:
    """``error`` in OAuth2 form, with its own status."""
    return oauth_error(error.status, error.code, error.message, retry_after=_retry_after(error))


# -- the answers that do not come from an exception --------------------------------------------

#: An error nobody meant: the details are in the server log, never in the answer.
INTERNAL_ERROR = registry_error(500, "INTERNAL_ERROR", "internal error; see the server log")


def database_unavailable() -> ErrorAnswer:
    """503 with a retry hint, when the database is unreachable or busy."""
    return registry_error(503, "UNAVAILABLE",
                          "the database is unreachable or busy; try again shortly",
                          retry_after=DATABASE_RETRY_AFTER)


def body_too_large(limit: int) -> ErrorAnswer:
    """413 for a body over ``limit`` bytes, closing the connection (the rest is unread)."""
    return registry_error(413, "REQUEST_ENTITY_TOO_LARGE",
                          f"the request body is larger than {limit} bytes", close=True)


def body_too_slow(seconds: float) -> ErrorAnswer:
    """408 for a body that did not arrive within ``seconds``, closing the connection."""
    return registry_error(408, "REQUEST_TIMEOUT",
                          f"the request body did not arrive within {seconds:g} seconds",
                          close=True)


def invalid_content_length() -> ErrorAnswer:
    """400 for a Content-Length that is no number, closing the connection."""
    return registry_error(400, "BAD_REQUEST", "invalid Content-Length", close=True)

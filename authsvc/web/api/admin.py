"""The admin and self-service API under ``/api/v1``: authentication, body parsing, paging and
errors shared by its routes (``api/users.py``, ``api/repositories.py``)."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from flask import Blueprint, Response, current_app, g, jsonify, request

from authsvc.core.error_bodies import api_answer
from authsvc.core.opaque_secrets import as_utc
from authsvc.core.policy import ANONYMOUS, Subject
from authsvc.db.audit import current_origin, set_actor
from authsvc.db.services import Services, services_of
from authsvc.errors import AuthsvcError, Forbidden, InvalidRequest, MalformedBody
from authsvc.web.api import flask_response
from authsvc.web.api.auth_header import subject_from_header

bp = Blueprint("admin", __name__, url_prefix="/api/v1")

MAX_PER_PAGE = 100
MAX_PAGE = 1_000_000
#: Routes that authenticate otherwise: the document is public, the registry's notifications carry
#: their own secret.
PUBLIC_ENDPOINTS = {"admin.openapi", "admin.registry_events"}
#: Listings that a caller without credentials may read too: they show what anonymous callers
#: may pull (the public repositories) and nothing else.
ANONYMOUS_READS = {"admin.list_repositories", "admin.get_repository", "admin.list_tags"}


def state() -> Services:
    return services_of(current_app)


def actor() -> Subject:
    """Who is calling (``authenticate`` put it on ``g``)."""
    return cast(Subject, g.actor)


@bp.before_request
def authenticate() -> None:
    """Every route but the OpenAPI document, the registry's notifications and the repository
    listings needs Basic (password or access token) or Bearer (access token) credentials;
    credentials sent to a listing are checked as anywhere else. Raises AuthenticationFailed,
    TooManyAttempts."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    header = request.environ.get("HTTP_AUTHORIZATION")
    if header is None and request.endpoint in ANONYMOUS_READS:
        g.actor = ANONYMOUS
        return
    address = current_origin().remote_addr or None  # the client's, behind trusted proxies too
    g.actor = subject_from_header(header, state().credentials, address, bearer=True,
                                  anonymous=False)
    set_actor(g.actor.name or "")


@bp.errorhandler(AuthsvcError)
def api_error(error: AuthsvcError) -> Response:
    """The API's error answer (``authsvc.core.error_bodies.api_answer``): validation errors are
    422 here, 400 stays for bodies that are not JSON objects."""
    return flask_response(api_answer(error))


def require(allowed: bool, message: str) -> None:
    if not allowed:
        raise Forbidden(message)


def json_body(fields: Mapping[str, type | tuple[type, ...]],
              required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The request's JSON object, with only ``fields`` of the given types.

    Raises MalformedBody (400) when the body is not a JSON object (or is nested too deeply to
    be read), InvalidRequest (422) for unknown or missing fields and wrong types.
    """
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # json gives up on deep nesting (``[[[…``) with this, not ValueError
        raise MalformedBody("the JSON body is nested too deeply") from None
    if not isinstance(body, dict):
        raise MalformedBody("the body must be a JSON object (Content-Type: application/json)")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise InvalidRequest(f"unknown field {unknown[0][:50]!r}; "
                             f"allowed: {', '.join(sorted(fields))}")
    for name in required:
        if name not in body:
            raise InvalidRequest(f"the field {name!r} is required")
    for name, value in body.items():
        kind = fields[name]
        kinds: tuple[type, ...] = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python, but true is no number of days
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise InvalidRequest(f"the field {name!r} has the wrong type")
    return body


def string_list(body: Mapping[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"the field {name!r} must be a list of strings")
    return value


def page_args() -> tuple[int, int]:
    """``page`` (from 1) and ``per_page`` (1–100, default 20) from the query string."""
    try:
        page = int(request.args.get("page", "1"))
        per_page = int(request.args.get("per_page", "20"))
    except ValueError as e:
        raise InvalidRequest("page and per_page must be whole numbers") from e
    if not 1 <= page <= MAX_PAGE or not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidRequest(f"page must be from 1 to {MAX_PAGE} and per_page from 1 to "
                             f"{MAX_PER_PAGE}")
    return page, per_page


def paged(items: list[dict[str, Any]], total: int, page: int, per_page: int) -> Response:
    return jsonify(items=items, total=total, page=page, per_page=per_page)


def timestamp(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with ``Z``; naive values (SQLite) are UTC."""
    if moment is None:
        return None
    return as_utc(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def created(body: dict[str, Any]) -> tuple[Response, int]:
    return jsonify(body), 201


def no_content() -> tuple[str, int]:
    return "", 204

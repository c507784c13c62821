"""The web layer: blueprints, the audit origin of each request, and the one place where
exceptions become error answers (built in ``authsvc.core.error_bodies``)."""

import logging
from typing import Any

from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from authsvc.core.client_address import client_address
from authsvc.core.error_bodies import (
    INTERNAL_ERROR,
    ErrorAnswer,
    database_unavailable,
    registry_answer,
    registry_error,
)
from authsvc.db.audit import NO_ORIGIN, Origin, enter_origin, leave_origin, set_origin
from authsvc.db.models import db
from authsvc.db.services import services_of
from authsvc.errors import AuthsvcError, InvalidRequest
from authsvc.observability.metrics import metrics

log = logging.getLogger(__name__)


def flask_response(answer: ErrorAnswer) -> Response:
    """``answer`` as a Flask response (the app's after-request hooks add HSTS)."""
    return Response(answer.body, status=answer.status, headers=list(answer.headers))


def register_blueprints(app: Flask) -> None:
    register_origin(app)
    register_hsts(app)
    from authsvc.web.api import (  # noqa: F401 - routes on admin.bp
        audit,
        openapi,
        orgs,
        registry_deletes,
        registry_events,
        repositories,
        users,
    )
    from authsvc.web.api.admin import bp as admin_bp
    from authsvc.web.api.docker_search import bp as docker_search_bp
    from authsvc.web.api.v2_catalog import bp as v2_catalog_bp
    from authsvc.web.api.wellknown import bp as wellknown_bp

    app.register_blueprint(admin_bp)
    app.register_blueprint(wellknown_bp)
    app.register_blueprint(docker_search_bp)
    app.register_blueprint(v2_catalog_bp)


#: authsvc answers HTTPS only: browsers (and the admin API's web clients) must never fall back.
HSTS = "max-age=31536000"


def register_hsts(app: Flask) -> None:
    """Every response, errors included, carries ``Strict-Transport-Security``."""

    @app.after_request
    def add_hsts(response: Response) -> Response:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response


def refuse_nul(environ: dict[str, Any]) -> None:
    """NUL never belongs in a name, scope or parameter, and PostgreSQL cannot store it."""
    query = environ.get("QUERY_STRING", "").lower()
    if "\x00" in query or "%00" in query or "\x00" in environ.get("PATH_INFO", ""):
        raise InvalidRequest("NUL characters are not allowed in the request")


def request_address(environ: dict[str, Any]) -> str:
    """The client's address: the peer's, or behind a proxy in TRUSTED_PROXIES the one it
    forwarded (``authsvc.core.client_address``); "" when unknown."""
    address = environ.get("REMOTE_ADDR") or ""
    trusted = services_of(current_app).trusted_proxies
    if trusted:
        address = client_address(address, environ.get("HTTP_X_FORWARDED_FOR"), trusted)
    return str(address)


def register_origin(app: Flask) -> None:
    """Every request has an audit origin of its own: the client's address and client id, from
    the start of the request to its end (then the thread's origin is what it was before, so
    nothing of it reaches the next request or other work on the thread). The views read the
    address from there (``current_origin().remote_addr``)."""

    @app.before_request
    def start_origin() -> None:
        g.audit_origin = enter_origin(NO_ORIGIN)  # fresh, even if the request fails below
        refuse_nul(request.environ)
        # The form (POST /token) is read by its view, which adds the client id from it.
        set_origin(Origin(remote_addr=request_address(request.environ),
                          client_id=request.args.get("client_id") or ""))

    @app.teardown_request
    def end_origin(_error: BaseException | None) -> None:
        scope = g.pop("audit_origin", None)
        if scope is not None:
            leave_origin(scope)


def answer_for(error: Exception) -> ErrorAnswer:
    """The registry-format answer for any error a request can raise (needs an app context: a
    database error discards the session, so the next request starts on a fresh connection)."""
    if isinstance(error, AuthsvcError):
        if error.status >= 500:
            log.error("%s: %s", error.code, error.message)
        return registry_answer(error)
    if isinstance(error, HTTPException):
        allow = error.valid_methods if isinstance(error, MethodNotAllowed) else None
        return registry_error(error.code or 500, (error.name or "error").upper().replace(" ", "_"),
                              error.description or error.name, allow=allow or ())
    if isinstance(error, UnicodeError):
        # Raw bytes in the query string that are not UTF-8: a bad request, not a crash.
        return registry_error(400, "BAD_REQUEST", "the request is not valid UTF-8")
    if isinstance(error, OperationalError | InterfaceError):
        # The database is unreachable or busy: 503 with a retry hint, never a traceback.
        log.error("database unavailable: %s", type(error.orig).__name__)
        metrics().database_errors.inc()
        db.session.remove()
        return database_unavailable()
    log.error("unhandled error", exc_info=error)
    return INTERNAL_ERROR


def response_for(error: Exception) -> Response:
    """``answer_for(error)`` as a Flask response: the app's handler for every exception."""
    return flask_response(answer_for(error))


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(Exception, response_for)

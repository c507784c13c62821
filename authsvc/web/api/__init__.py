"""The web layer: blueprints and the one place where errors become JSON responses."""

import logging
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from authsvc.core.client_address import client_address
from authsvc.db.audit import Origin, set_origin
from authsvc.db.models import db
from authsvc.db.services import services_of
from authsvc.errors import AuthenticationFailed, AuthsvcError, InvalidRequest, TooManyAttempts

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str) -> Response:
    """The registry's error format: ``{"errors": [{"code": …, "message": …}]}``."""
    response = jsonify(errors=[{"code": code, "message": message}])
    response.status_code = status
    return response


def register_blueprints(app: Flask) -> None:
    register_origin(app)
    register_hsts(app)
    from authsvc.web.api import audit, openapi, repositories, users  # noqa: F401 - routes on admin.bp
    from authsvc.web.api.admin import bp as admin_bp
    from authsvc.web.api.wellknown import bp as wellknown_bp

    app.register_blueprint(admin_bp)
    app.register_blueprint(wellknown_bp)


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
    """Every request starts with a fresh audit origin: the client's address and client id.
    The views read the address from there (``current_origin().remote_addr``)."""

    app.before_request(lambda: refuse_nul(request.environ))

    @app.before_request
    def start_origin() -> None:
        # The form (POST /token) is read by its view, which adds the client id from it.
        set_origin(Origin(remote_addr=request_address(request.environ),
                          client_id=request.args.get("client_id") or ""))


def response_for(error: Exception) -> Response:
    """The registry-format answer for any error a request can raise (needs an app context)."""
    if isinstance(error, AuthsvcError):
        if error.status >= 500:
            log.error("%s: %s", error.code, error.message)
        response = error_response(error.status, error.code, error.message)
        if isinstance(error, AuthenticationFailed):
            response.headers["WWW-Authenticate"] = 'Basic realm="authsvc"'
        if isinstance(error, TooManyAttempts):
            response.headers["Retry-After"] = str(error.retry_after)
        return response
    if isinstance(error, HTTPException):
        status = error.code or 500
        code = (error.name or "error").upper().replace(" ", "_")
        response = error_response(status, code, error.description or error.name)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response
    if isinstance(error, UnicodeError):
        # Raw bytes in the query string that are not UTF-8: a bad request, not a crash.
        return error_response(400, "BAD_REQUEST", "the request is not valid UTF-8")
    if isinstance(error, OperationalError | InterfaceError):
        # The database is unreachable or busy: 503 with a retry hint, never a traceback. The
        # session is discarded, so the next request starts on a fresh connection.
        log.error("database unavailable: %s", type(error.orig).__name__)
        db.session.remove()
        response = error_response(503, "UNAVAILABLE",
                                  "the database is unreachable or busy; try again shortly")
        response.headers["Retry-After"] = "5"
        return response
    log.error("unhandled error", exc_info=error)
    return error_response(500, "INTERNAL_ERROR", "internal error; see the server log")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(Exception, response_for)

"""The realm: ``GET /token`` (PROTOCOL §1.2–1.3) and the OAuth2 ``POST /token`` (§1.4).

Every token issued or refused is written to the audit trail.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

from authsvc.api.auth_header import authorization
from authsvc.audit import Event, current_origin, set_origin
from authsvc.errors import (
    AuthenticationFailed,
    AuthsvcError,
    InvalidRequest,
    InvalidScope,
    TooManyAttempts,
)
from authsvc.policy import ANONYMOUS, Subject
from authsvc.scopes import Scope, parse_scopes
from authsvc.state import State

bp = Blueprint("token", __name__)
log = logging.getLogger("authsvc.tokens")


class UnsupportedGrantType(InvalidRequest):
    code = "UNSUPPORTED_GRANT_TYPE"


def state() -> State:
    return current_app.extensions["authsvc"]  # type: ignore[no-any-return]


def request_subject(app_state: State) -> Subject:
    """Anonymous without an Authorization header; else the user its Basic credentials prove.

    The subject comes from the credentials only, never from the ``account`` parameter.
    """
    if "Authorization" not in request.headers:
        return ANONYMOUS
    auth = authorization()
    if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
        raise AuthenticationFailed()
    return app_state.credentials.basic(auth.username, auth.password, request.remote_addr)


def checked_service(app_state: State, service: str | None) -> str:
    if not service:
        raise InvalidRequest("the service parameter is required")
    if service not in app_state.config["SERVICES"]:
        raise InvalidRequest(f"unknown service {service[:200]!r}")
    return service


def token_body(app_state: State, subject: Subject, service: str, scopes: Sequence[Scope],
               grant_type: str) -> tuple[dict[str, Any], str]:
    """Decide the scopes, sign the token and audit it: the fields GET and POST answers share,
    and the granted scope as a space-separated string."""
    grants = app_state.repos.authorize(subject, scopes)
    issued = app_state.issuer.issue(subject.name, service, grants)
    granted = " ".join(str(Scope(scope.type, scope.name, actions))
                       for scope, actions in grants if actions)
    requested = " ".join(str(s) for s in scopes)
    app_state.audit.record_soon(Event("token.issued", service=service, requested=requested,
                                 granted=granted, detail=f"grant_type={grant_type}"),
                           actor=subject.name or "")
    return {"token": issued.token, "access_token": issued.token,
            "expires_in": issued.expires_in, "issued_at": issued.issued_at_rfc3339}, granted


def audited(handler: Callable[[State], Response]) -> Callable[[], Response]:
    """Run ``handler`` and write a ``token.refused`` event when it refuses the request."""

    def view() -> Response:
        app_state = state()
        try:
            return handler(app_state)
        except AuthsvcError as error:
            values: MultiDict[str, str]
            try:
                values = request.values
            except HTTPException:  # a body the form parser refused: audit the query alone
                values = request.args
            requested = " ".join(values.getlist("scope"))
            app_state.audit.record(Event(
                "token.refused", service=values.get("service", "")[:255],
                requested=requested, detail=f"{error.code}: {error.message}"))
            raise

    view.__name__ = handler.__name__
    return view


def wants_refresh_token(subject: Subject) -> bool:
    """Refresh tokens go to password logins only. An access-token login gets none, so the
    client keeps sending the access token, and its limits and revocation keep applying."""
    return subject.name is not None and subject.limit is None


def _get_token(app_state: State) -> Response:
    service = checked_service(app_state, request.args.get("service"))
    scopes = parse_scopes(request.args.getlist("scope"))
    subject = request_subject(app_state)
    set_origin(replace(current_origin(), actor=subject.name or ""))
    grant_type = "anonymous" if subject.name is None else "basic"
    body, _ = token_body(app_state, subject, service, scopes, grant_type)
    if (request.args.get("offline_token") == "true" and subject.name is not None
            and wants_refresh_token(subject)):
        body["refresh_token"] = app_state.refresh_tokens.issue(
            subject.name, service, request.args.get("client_id", ""))
    return jsonify(body)


bp.add_url_rule("/token", "get_token", audited(_get_token), methods=["GET"])


def _form_field(name: str) -> str:
    value = request.form.get(name)
    if not value:
        raise InvalidRequest(f"the {name} field is required")
    return value


def _post_token(app_state: State) -> Response:
    """OAuth2 password and refresh-token grants; errors in OAuth2 form."""
    try:
        return jsonify(_grant(app_state))
    except AuthsvcError as error:
        if error.status >= 500:
            raise
        raise OAuthError(error) from error
    except (BadRequest, RequestEntityTooLarge) as error:  # a body the form parser refused
        wrapped = InvalidRequest(error.description or "malformed request body")
        wrapped.status = error.code or 400
        raise OAuthError(wrapped) from error


def _grant(app_state: State) -> dict[str, Any]:
    if any("\x00" in value for value in request.form.values()):
        raise InvalidRequest("NUL characters are not allowed in the request")
    set_origin(replace(current_origin(), client_id=request.form.get("client_id", "")[:128]))
    grant_type = _form_field("grant_type")
    if grant_type not in ("password", "refresh_token"):
        raise UnsupportedGrantType(f"grant_type {grant_type[:50]!r} is not supported; "
                                   "use password or refresh_token")
    service = checked_service(app_state, _form_field("service"))
    client_id = _form_field("client_id")
    scopes = parse_scopes(request.form.getlist("scope"))
    refresh_token: str | None = None
    address = request.remote_addr
    if grant_type == "password":
        subject = app_state.credentials.basic(_form_field("username"), _form_field("password"),
                                              address)
        if (request.form.get("access_type") == "offline" and subject.name is not None
                and wants_refresh_token(subject)):
            refresh_token = app_state.refresh_tokens.issue(subject.name, service, client_id)
    else:
        refresh_token = _form_field("refresh_token")
        subject = app_state.credentials.refresh(refresh_token, service, client_id, address)
    set_origin(replace(current_origin(), actor=subject.name or ""))
    body, granted = token_body(app_state, subject, service, scopes, grant_type)
    body["scope"] = granted
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    return body


bp.add_url_rule("/token", "post_token", audited(_post_token), methods=["POST"])


class OAuthError(AuthsvcError):
    """An error of the OAuth2 endpoint, answered in RFC 6749 §5.2 form."""

    def __init__(self, error: AuthsvcError) -> None:
        super().__init__(error.message)
        self.original = error
        self.status = error.status
        self.code = error.code


@bp.errorhandler(OAuthError)
def oauth_error(wrapper: OAuthError) -> Response:
    """401 for bad credentials so containerd falls back to GET; 429 with Retry-After."""
    error = wrapper.original
    if isinstance(error, AuthenticationFailed):
        code = "invalid_grant"
    elif isinstance(error, InvalidScope):
        code = "invalid_scope"
    elif isinstance(error, UnsupportedGrantType):
        code = "unsupported_grant_type"
    elif isinstance(error, TooManyAttempts):
        code = "temporarily_unavailable"
    else:
        code = "invalid_request"
    response = jsonify(error=code, error_description=error.message)
    response.status_code = error.status
    if isinstance(error, TooManyAttempts):
        response.headers["Retry-After"] = str(error.retry_after)
    return response

"""``GET /token``: the realm the registry's challenge sends clients to (PROTOCOL §1.2–1.3)."""

from flask import Blueprint, Response, current_app, jsonify, request

from authsvc.errors import AuthenticationFailed, InvalidRequest
from authsvc.policy import ANONYMOUS, Subject
from authsvc.scopes import parse_scopes
from authsvc.state import State

bp = Blueprint("token", __name__)


def state() -> State:
    return current_app.extensions["authsvc"]  # type: ignore[no-any-return]


def request_subject(app_state: State) -> Subject:
    """Anonymous without an Authorization header; else the user its Basic credentials prove.

    The subject comes from the credentials only, never from the ``account`` parameter.
    """
    if "Authorization" not in request.headers:
        return ANONYMOUS
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
        raise AuthenticationFailed()
    return app_state.accounts.authenticate(auth.username, auth.password)


def checked_service(app_state: State, service: str | None) -> str:
    if not service:
        raise InvalidRequest("the service parameter is required")
    if service not in app_state.config["SERVICES"]:
        raise InvalidRequest(f"unknown service {service[:200]!r}")
    return service


@bp.get("/token")
def get_token() -> Response:
    app_state = state()
    service = checked_service(app_state, request.args.get("service"))
    scopes = parse_scopes(request.args.getlist("scope"))
    subject = request_subject(app_state)
    grants = app_state.accounts.authorize(subject, scopes)
    issued = app_state.issuer.issue(subject.name, service, grants)
    return jsonify(token=issued.token, access_token=issued.token, expires_in=issued.expires_in,
                   issued_at=issued.issued_at_rfc3339)

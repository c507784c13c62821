"""The realm: ``GET /token`` (PROTOCOL §1.2–1.3) and the OAuth2 ``POST /token`` (§1.4).

Every ``docker pull`` and ``push`` asks for a token, often several, so this endpoint is a plain
WSGI handler in front of the Flask app rather than a Flask view: Flask's per-request machinery
(request context, URL routing, before/after hooks, teardown) costs more than issuing a cached
token does. It parses queries and forms exactly as werkzeug does (``authsvc.web.wsgi_input``; a
test holds it to that), runs inside the app context (the services' database session works as
everywhere else), and answers errors with the app's own ``answer_for`` (OAuth2 ones with
``oauth_answer``; both built by ``authsvc.core.error_bodies``), so a client sees the same JSON,
headers and statuses as from any other route. Each request's audit origin ends with it.

Every token issued or refused is written to the audit trail.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from flask import Flask, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import (
    BadRequest,
    HTTPException,
    MethodNotAllowed,
    RequestEntityTooLarge,
)

from authsvc.core.client_address import client_address
from authsvc.core.error_bodies import ErrorAnswer, oauth_answer
from authsvc.core.policy import Subject
from authsvc.core.scopes import Scope, parse_scopes
from authsvc.core.tokens import IssuedToken
from authsvc.db.audit import (
    NO_ORIGIN,
    Event,
    Origin,
    current_origin,
    enter_origin,
    leave_origin,
    set_actor,
    set_origin,
)
from authsvc.db.reads import Wanted
from authsvc.db.services import Services, services_of
from authsvc.errors import AuthenticationFailed, AuthsvcError, InvalidRequest, TooManyAttempts
from authsvc.observability.metrics import metrics
from authsvc.web.api import HSTS, answer_for, refuse_nul
from authsvc.web.api.auth_header import authorization, subject_from_header
from authsvc.web.api.body_limit import WSGIApp
from authsvc.web.wsgi_input import Parameters, PostedForm, form_field, query_parameters

PATH = "/token"
ALLOWED = "GET, HEAD, OPTIONS, POST"


class UnsupportedGrantType(InvalidRequest):
    code = "UNSUPPORTED_GRANT_TYPE"


class OAuthError(AuthsvcError):
    """An error of the OAuth2 endpoint, answered in RFC 6749 §5.2 form (``oauth_answer``)."""

    def __init__(self, error: AuthsvcError) -> None:
        super().__init__(error.message)
        self.original = error
        self.status = error.status
        self.code = error.code


class TokenEndpoint:
    """WSGI middleware: answers ``/token`` itself and hands every other path to ``next_app``."""

    def __init__(self, app: Flask, next_app: WSGIApp) -> None:
        self.app = app
        self.next_app = next_app
        self.state: Services = services_of(app)
        self.trusted_proxies = self.state.trusted_proxies
        self.max_length: int | None = app.config["MAX_CONTENT_LENGTH"]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any],
                 ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.next_app(environ, start_response)
        with self.app.app_context():
            origin = enter_origin(NO_ORIGIN)  # this request's, from a fresh one to its end
            try:
                answer = self.respond(environ)
            finally:
                leave_origin(origin)
            if isinstance(answer, Response):  # OPTIONS
                answer.headers["Strict-Transport-Security"] = HSTS
                return answer(environ, start_response)
        # Written out directly: werkzeug's Response would cost more than a cached token does.
        if isinstance(answer, ErrorAnswer):
            start_response(answer.status_line,
                           [*answer.wsgi_headers(), ("Strict-Transport-Security", HSTS)])
            body = answer.body
        else:
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(answer))),
                                      ("Cache-Control", "no-store"),
                                      ("Strict-Transport-Security", HSTS)])
            body = answer
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def respond(self, environ: dict[str, Any]) -> bytes | ErrorAnswer | Response:
        """The JSON body of a token, the answer to an error in registry (or OAuth2) form, or
        the answer to OPTIONS."""
        try:
            refuse_nul(environ)
            query = query_parameters(environ)
            address = environ.get("REMOTE_ADDR") or ""
            if self.trusted_proxies:
                address = client_address(address, environ.get("HTTP_X_FORWARDED_FOR"),
                                         self.trusted_proxies)
            set_origin(Origin(remote_addr=address, client_id=query.get("client_id") or ""))
            method = environ.get("REQUEST_METHOD")
            if method in ("GET", "HEAD"):
                return self.audited(lambda: query,
                                    lambda: self.get_token(environ, query, address))
            if method == "POST":
                posted = PostedForm(environ, self.max_length)
                return self.audited(lambda: posted.values(query),
                                    lambda: self.post_token(posted, address))
            if method == "OPTIONS":
                return Response(status=200, headers={"Allow": ALLOWED})
            return answer_for(MethodNotAllowed(ALLOWED.split(", ")))
        except OAuthError as error:
            metrics().tokens_refused[refusal_reason(error.original)].inc()
            return oauth_answer(error.original)
        except Exception as error:  # every error gets its JSON answer
            metrics().tokens_refused[refusal_reason(error)].inc()
            return answer_for(error)

    def audited(self, values: Callable[[], Parameters],
                handler: Callable[[], bytes]) -> bytes:
        """Run ``handler``; write a ``token.refused`` event, with the service and scopes of
        ``values``, when it refuses the request."""
        try:
            return handler()
        except AuthsvcError as error:
            fields = values()
            self.state.audit.record(Event(
                "token.refused", service=fields.get("service", "")[:255],
                requested=" ".join(fields.getlist("scope")),
                detail=f"{error.code}: {error.message}"))
            raise

    # -- GET: the registry's token flow ---------------------------------------------------------

    def get_token(self, environ: dict[str, Any], query: Parameters, address: str) -> bytes:
        """The token's JSON body; with ``offline_token=true`` and a password login a refresh
        token too, but never for HEAD (its answer has no body: nobody would see it)."""
        service = self.checked_service(query.get("service"))
        scopes = parse_scopes(query.getlist("scope"))
        header = environ.get("HTTP_AUTHORIZATION")
        with self.state.reads.ahead(self.reads_ahead(header, scopes)):
            subject = subject_from_header(header, self.state.credentials, address or None,
                                          bearer=False, anonymous=True)
            set_actor(subject.name or "")
            grant_type = "anonymous" if subject.name is None else "basic"
            issued, _ = self.issue(subject, service, scopes, grant_type)
        if (query.get("offline_token") == "true" and subject.name is not None
                and environ.get("REQUEST_METHOD") != "HEAD" and wants_refresh_token(subject)):
            refresh_token = self.state.refresh_tokens.issue(
                subject.name, service, query.get("client_id", ""))
            return issued.answer_json_with({"refresh_token": refresh_token})
        return issued.answer_json

    # -- POST: OAuth2 password and refresh-token grants -----------------------------------------

    def post_token(self, posted: PostedForm, address: str) -> bytes:
        """Errors in OAuth2 form."""
        try:
            return self.grant(posted.form(), address or None)
        except AuthsvcError as error:
            if error.status >= 500:
                raise
            raise OAuthError(error) from error
        except (BadRequest, RequestEntityTooLarge) as error:  # a body the form parser refused
            wrapped = InvalidRequest(error.description or "malformed request body")
            wrapped.status = error.code or 400
            raise OAuthError(wrapped) from error

    def grant(self, form: Parameters, address: str | None) -> bytes:
        if any("\x00" in value for _, value in form.pairs()):
            raise InvalidRequest("NUL characters are not allowed in the request")
        set_origin(replace(current_origin(), client_id=form.get("client_id", "")[:128]))
        grant_type = form_field(form, "grant_type")
        if grant_type not in ("password", "refresh_token"):
            raise UnsupportedGrantType(f"grant_type {grant_type[:50]!r} is not supported; "
                                       "use password or refresh_token")
        service = self.checked_service(form_field(form, "service"))
        client_id = form_field(form, "client_id")
        scopes = parse_scopes(form.getlist("scope"))
        with self.state.reads.ahead(self.form_reads_ahead(form, grant_type, scopes)):
            subject, refresh_token = self.form_login(form, grant_type, service, client_id,
                                                     address)
            set_actor(subject.name or "")
            issued, granted = self.issue(subject, service, scopes, grant_type)
        fields = {"scope": granted}
        if refresh_token is not None:
            fields["refresh_token"] = refresh_token
        return issued.answer_json_with(fields)

    def form_login(self, form: Parameters, grant_type: str, service: str, client_id: str,
                   address: str | None) -> tuple[Subject, str | None]:
        """The subject of a password or refresh-token grant, and the refresh token to answer
        (the one sent, or with ``access_type=offline`` a new one; None for neither)."""
        credentials = self.state.credentials
        if grant_type == "password":
            subject = credentials.basic(form_field(form, "username"),
                                        form_field(form, "password"), address)
            if (form.get("access_type") == "offline" and subject.name is not None
                    and wants_refresh_token(subject)):
                return subject, self.state.refresh_tokens.issue(subject.name, service,
                                                                client_id)
            return subject, None
        refresh_token = form_field(form, "refresh_token")
        return credentials.refresh(refresh_token, service, client_id, address), refresh_token

    # -- shared ---------------------------------------------------------------------------------

    def reads_ahead(self, header: str | None, scopes: Sequence[Scope]) -> Iterator[Wanted]:
        """The reads a GET with this Authorization header will make (``Reads.ahead`` looks at
        them on PostgreSQL only: elsewhere the header is not parsed twice)."""
        auth = authorization(header) if header is not None else None
        username = password = None
        if auth is not None and auth.type == "basic":
            username, password = auth.get("username"), auth.get("password")
        if username and password is not None:
            yield from self.state.credentials.reads_ahead(username, password)
        yield from self.state.authorizer.reads_ahead(username or None, scopes)

    def form_reads_ahead(self, form: Parameters, grant_type: str,
                         scopes: Sequence[Scope]) -> Iterator[Wanted]:
        """The reads a POST with this form will make, as ``reads_ahead``."""
        username = (form.get("username") or None) if grant_type == "password" else None
        if username is not None:
            yield from self.state.credentials.reads_ahead(username, form.get("password") or "")
        elif grant_type == "refresh_token" and form.get("refresh_token"):
            yield from self.state.refresh_tokens.reads_ahead(form.get("refresh_token") or "")
        yield from self.state.authorizer.reads_ahead(username, scopes)

    def checked_service(self, service: str | None) -> str:
        if not service:
            raise InvalidRequest("the service parameter is required")
        if service not in self.state.config["SERVICES"]:
            raise InvalidRequest(f"unknown service {service[:200]!r}")
        return service

    def issue(self, subject: Subject, service: str, scopes: Sequence[Scope],
              grant_type: str) -> tuple[IssuedToken, str]:
        """Decide the scopes, sign the token and audit it; the token, and the granted scope as
        a space-separated string. An access-token login's limit goes into the token too
        (``/v1/search`` and ``/v2/_catalog`` list within it)."""
        grants = self.state.authorizer.authorize(subject, scopes)
        issued = self.state.issuer.issue(subject.name, service, grants, limit=subject.limit)
        granted = " ".join(str(Scope(scope.type, scope.name, actions))
                           for scope, actions in grants if actions)
        self.state.audit.record_soon(
            Event("token.issued", service=service, requested=" ".join(map(str, scopes)),
                  granted=granted, detail=f"grant_type={grant_type}"),
            actor=subject.name or "")
        metrics().tokens_issued[metric_grant_type(subject, grant_type)].inc()
        return issued, granted


def metric_grant_type(subject: Subject, grant_type: str) -> str:
    """The grant type a token is counted under: ``anonymous``, ``password``, ``access_token``
    (an access token given as the password, GET or POST) or ``refresh_token``."""
    if subject.name is None:
        return "anonymous"
    if grant_type == "refresh_token":
        return "refresh_token"
    return "access_token" if subject.limit is not None else "password"


def refusal_reason(error: Exception) -> str:
    """The reason a refused token request is counted under (``REFUSAL_REASONS``)."""
    if isinstance(error, AuthenticationFailed):
        return "bad_credentials"
    if isinstance(error, TooManyAttempts):
        return "locked_out"
    if isinstance(error, OperationalError | InterfaceError):
        return "database_unavailable"
    if isinstance(error, AuthsvcError):
        return "bad_request" if error.status < 500 else "error"
    if isinstance(error, HTTPException):
        return "bad_request" if (error.code or 500) < 500 else "error"
    # raw bytes in the query that are not UTF-8: answered 400
    return "bad_request" if isinstance(error, UnicodeError) else "error"


def wants_refresh_token(subject: Subject) -> bool:
    """Refresh tokens go to password logins only. An access-token login gets none, so the
    client keeps sending the access token, and its limits and revocation keep applying."""
    return subject.name is not None and subject.limit is None

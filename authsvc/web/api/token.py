"""The realm: ``GET /token`` (PROTOCOL §1.2–1.3) and the OAuth2 ``POST /token`` (§1.4).

Every ``docker pull`` and ``push`` asks for a token, often several, so this endpoint is a plain
WSGI handler in front of the Flask app rather than a Flask view: Flask's per-request machinery
(request context, URL routing, before/after hooks, teardown) costs more than issuing a cached
token does. It parses queries and forms exactly as werkzeug does (a test holds it to that), runs
inside the app context (the services' database session works as everywhere else), and answers
errors with the API's ``response_for``, so a client sees the same JSON, headers and statuses as
from any other route.

Every token issued or refused is written to the audit trail.
"""

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any, overload
from urllib.parse import parse_qsl

from flask import Flask, Request, Response, current_app
from werkzeug.exceptions import (
    BadRequest,
    MethodNotAllowed,
    RequestEntityTooLarge,
)

from authsvc.core.client_address import client_address
from authsvc.core.policy import ANONYMOUS, Subject
from authsvc.core.scopes import Scope, parse_scopes
from authsvc.core.tokens import IssuedToken
from authsvc.db.audit import Event, Origin, current_origin, set_actor, set_origin
from authsvc.db.services import Services, services_of
from authsvc.errors import (
    AuthenticationFailed,
    AuthsvcError,
    InvalidRequest,
    InvalidScope,
    TooManyAttempts,
)
from authsvc.web.api import HSTS, refuse_nul, response_for
from authsvc.web.api.auth_header import authorization
from authsvc.web.api.body_limit import WSGIApp

PATH = "/token"
ALLOWED = "GET, HEAD, OPTIONS, POST"


class UnsupportedGrantType(InvalidRequest):
    code = "UNSUPPORTED_GRANT_TYPE"


class OAuthError(AuthsvcError):
    """An error of the OAuth2 endpoint, answered in RFC 6749 §5.2 form."""

    def __init__(self, error: AuthsvcError) -> None:
        super().__init__(error.message)
        self.original = error
        self.status = error.status
        self.code = error.code


class Parameters:
    """Query or form fields, each name with its values in order. (werkzeug's MultiDict builds
    and catches a BadRequestKeyError for every missing name ``get`` is asked for.)"""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._pairs = list(pairs)
        self._values: dict[str, list[str]] = {}
        for name, value in self._pairs:
            self._values.setdefault(name, []).append(value)

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        values = self._values.get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(self._values.get(name, ()))

    def pairs(self) -> list[tuple[str, str]]:
        return list(self._pairs)


class TokenEndpoint:
    """WSGI middleware: answers ``/token`` itself and hands every other path to ``next_app``."""

    def __init__(self, app: Flask, next_app: WSGIApp) -> None:
        self.app = app
        self.next_app = next_app
        self.state: Services = services_of(app)
        self.trusted_proxies = self.state.trusted_proxies

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any],
                 ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.next_app(environ, start_response)
        with self.app.app_context():
            answer = self.respond(environ)
            if isinstance(answer, Response):
                answer.headers["Strict-Transport-Security"] = HSTS
                return answer(environ, start_response)
        # A token: written out directly, werkzeug's Response would cost more than the rest.
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(answer))),
                                  ("Cache-Control", "no-store"),
                                  ("Strict-Transport-Security", HSTS)])
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [answer]

    def respond(self, environ: dict[str, Any]) -> Response | bytes:
        """The JSON body of a token, or the response to an error in registry (or OAuth2)
        form."""
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
                posted = PostedForm(environ)
                return self.audited(lambda: posted.values(query),
                                    lambda: self.post_token(posted, address))
            if method == "OPTIONS":
                return Response(status=200, headers={"Allow": ALLOWED})
            return response_for(MethodNotAllowed(ALLOWED.split(", ")))
        except OAuthError as error:
            return oauth_error(error)
        except Exception as error:  # noqa: BLE001 - every error gets its JSON answer
            return response_for(error)

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
        subject = self.basic_subject(environ, address)
        set_actor(subject.name or "")
        grant_type = "anonymous" if subject.name is None else "basic"
        issued, _ = self.issue(subject, service, scopes, grant_type)
        if (query.get("offline_token") == "true" and subject.name is not None
                and environ.get("REQUEST_METHOD") != "HEAD" and wants_refresh_token(subject)):
            refresh_token = self.state.refresh_tokens.issue(
                subject.name, service, query.get("client_id", ""))
            return json_bytes({**issued.answer(), "refresh_token": refresh_token})
        return issued.answer_json

    def basic_subject(self, environ: dict[str, Any], address: str) -> Subject:
        """Anonymous without an Authorization header; else the user its Basic credentials
        prove, from the client at ``address``. The subject comes from the credentials only,
        never from ``account``."""
        if "HTTP_AUTHORIZATION" not in environ:
            return ANONYMOUS
        auth = authorization(environ.get("HTTP_AUTHORIZATION"))
        if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
            raise AuthenticationFailed()
        return self.state.credentials.basic(auth.username, auth.password, address or None)

    # -- POST: OAuth2 password and refresh-token grants -----------------------------------------

    def post_token(self, posted: "PostedForm", address: str) -> bytes:
        """Errors in OAuth2 form."""
        try:
            return json_bytes(self.grant(posted.form(), address or None))
        except AuthsvcError as error:
            if error.status >= 500:
                raise
            raise OAuthError(error) from error
        except (BadRequest, RequestEntityTooLarge) as error:  # a body the form parser refused
            wrapped = InvalidRequest(error.description or "malformed request body")
            wrapped.status = error.code or 400
            raise OAuthError(wrapped) from error

    def grant(self, form: Parameters, address: str | None) -> dict[str, Any]:
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
        refresh_token: str | None = None
        credentials = self.state.credentials
        if grant_type == "password":
            subject = credentials.basic(form_field(form, "username"),
                                        form_field(form, "password"), address)
            if (form.get("access_type") == "offline" and subject.name is not None
                    and wants_refresh_token(subject)):
                refresh_token = self.state.refresh_tokens.issue(subject.name, service, client_id)
        else:
            refresh_token = form_field(form, "refresh_token")
            subject = credentials.refresh(refresh_token, service, client_id, address)
        set_actor(subject.name or "")
        issued, granted = self.issue(subject, service, scopes, grant_type)
        body = {**issued.answer(), "scope": granted}
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return body

    # -- shared ---------------------------------------------------------------------------------

    def checked_service(self, service: str | None) -> str:
        if not service:
            raise InvalidRequest("the service parameter is required")
        if service not in self.state.config["SERVICES"]:
            raise InvalidRequest(f"unknown service {service[:200]!r}")
        return service

    def issue(self, subject: Subject, service: str, scopes: Sequence[Scope],
              grant_type: str) -> tuple[IssuedToken, str]:
        """Decide the scopes, sign the token and audit it; the token, and the granted scope as
        a space-separated string."""
        grants = self.state.repos.authorize(subject, scopes)
        issued = self.state.issuer.issue(subject.name, service, grants)
        granted = " ".join(str(Scope(scope.type, scope.name, actions))
                           for scope, actions in grants if actions)
        self.state.audit.record_soon(
            Event("token.issued", service=service, requested=" ".join(map(str, scopes)),
                  granted=granted, detail=f"grant_type={grant_type}"),
            actor=subject.name or "")
        return issued, granted


#: Queries up to this long are remembered once parsed: clients repeat the same few.
REMEMBERED_QUERY = 1024


def query_parameters(environ: dict[str, Any]) -> Parameters:
    """The query, parsed exactly as werkzeug's ``Request.args`` does (its own error handler
    keeps invalid percent-escapes as they are), without building a Request: raw bytes that
    are not UTF-8 raise UnicodeDecodeError, answered 400."""
    query = environ.get("QUERY_STRING", "")
    if len(query) <= REMEMBERED_QUERY:
        return _parsed_query(query)
    return _parse_query(query)


def _parse_query(query: str) -> Parameters:
    return url_encoded(query.encode("latin-1").decode())


def url_encoded(text: str) -> Parameters:
    """Fields of a query or URL-encoded form, as werkzeug reads them: blank values kept,
    invalid percent-escapes left as they are."""
    return Parameters(parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote"))


_parsed_query = lru_cache(maxsize=4096)(_parse_query)  # Parameters never change once made


FORM_TYPE = "application/x-www-form-urlencoded"


class PostedForm:
    """The body of a POST, read once. URL-encoded forms (what clients send) are parsed as
    werkzeug's form parser does, without building a Request; anything else goes through it."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self._form: Parameters | None = None

    def form(self) -> Parameters:
        """Raises RequestEntityTooLarge or BadRequest for a body the parser refuses."""
        if self._form is None:
            self._form = self._parse()
        return self._form

    def values(self, query: Parameters) -> Parameters:
        """The query and the form, or the query alone when the body was refused."""
        return Parameters([*query.pairs(), *(self._form.pairs() if self._form else [])])

    def _parse(self) -> Parameters:
        environ = self.environ
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        length = environ.get("CONTENT_LENGTH", "")
        if mimetype != FORM_TYPE or not length.isdigit():
            return Parameters(Request(environ).form.items(multi=True))
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        if limit is not None and int(length) > limit:
            raise RequestEntityTooLarge()
        try:
            text = environ["wsgi.input"].read(int(length)).decode()
        except UnicodeDecodeError:
            return Parameters([])  # as werkzeug: a body that is not UTF-8 holds no fields
        return url_encoded(text)


def form_field(form: Parameters, name: str) -> str:
    value = form.get(name)
    if not value:
        raise InvalidRequest(f"the {name} field is required")
    return value


def wants_refresh_token(subject: Subject) -> bool:
    """Refresh tokens go to password logins only. An access-token login gets none, so the
    client keeps sending the access token, and its limits and revocation keep applying."""
    return subject.name is not None and subject.limit is None


def json_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


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
    response = Response(json_bytes({"error": code, "error_description": error.message}),
                        status=error.status, mimetype="application/json")
    if isinstance(error, TooManyAttempts):
        response.headers["Retry-After"] = str(error.retry_after)
    return response

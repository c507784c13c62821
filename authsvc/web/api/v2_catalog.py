"""``GET /v2/_catalog`` behind nginx: the registry's catalog, holding what the caller may pull.

podman 4.3 (containers/image 5.23) searches with ``/v1/search`` and no credentials; when that
is refused (``authsvc.web.api.docker_search`` answers 401) it lists ``/v2/_catalog`` with a v2
token from the realm, got with its stored credentials: first one for no scope, which gets the
registry's challenge naming ``registry:catalog:*``, then one for that scope (measured through
nginx). It keeps the names that contain the search term and follows the ``Link`` header.
The registry's own catalog is unfiltered (only admins hold ``*`` on it), so nginx sends this
one path here (``authsvc proxy-config``: ``location = /v2/_catalog``).

The answer is the registry's: ``{"repositories": [...]}``, sorted by name, ``n`` (1–1000,
default 100) names after ``last``, ``Link: </v2/_catalog?last=X&n=N>; rel="next"`` when more
follow, and ``Docker-Distribution-API-Version: registry/2.0``. It holds the repositories the
token's subject may pull now (anonymous: the public ones; an access token's limit applies) that
hold at least one tag, as authsvc's catalog records them (the registry's notifications,
``authsvc registry sync``): the registry lists only repositories it stores.

Credentials: ``Authorization: Bearer`` with a JWT authsvc signed (signature, issuer, audience,
expiry) that has an access entry for ``registry:catalog``, whatever its actions (podman's
token for ``*`` holds none unless an admin asked). Its subject ("" for anonymous) must be an
enabled user now. Anything else is 401 with the registry's own challenge, so clients run the
token flow. The registry's catalog itself stays reachable at REGISTRY_URL, past nginx: ``authsvc
registry sync`` reads it there with a token of its own.
"""

from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, request

from authsvc.core.error_bodies import registry_error
from authsvc.core.policy import CATALOG, Subject
from authsvc.db.audit import Event, set_actor
from authsvc.db.services import Services, services_of
from authsvc.errors import AuthenticationFailed, InvalidRequest
from authsvc.web.api.auth_header import authorization
from authsvc.web.api.docker_search import token_subject, token_verifier

bp = Blueprint("v2_catalog", __name__, url_prefix="/v2")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
CATALOG_SCOPE = "registry:catalog:*"


class PaginationNumberInvalid(InvalidRequest):
    """A bad ``n``: the registry's own error code."""

    code = "PAGINATION_NUMBER_INVALID"


class InsufficientScope(AuthenticationFailed):
    """A good token that was not issued for the catalog."""


def state() -> Services:
    return services_of(current_app)


@bp.after_request
def add_api_version(response: Response) -> Response:
    """Every answer of this blueprint, errors included, names the registry API version."""
    response.headers[API_VERSION[0]] = API_VERSION[1]
    return response


def challenge(message: str, error: str | None = None) -> Response:
    """401 with the registry's challenge for the catalog (the realm, the first service,
    ``registry:catalog:*``) and ``error`` (``invalid_token``, ``insufficient_scope``) when
    credentials were sent."""
    services = state()
    value = (f'Bearer realm="{services.realm}",service="{services.config["SERVICES"][0]}",'
             f'scope="{CATALOG_SCOPE}"')
    if error is not None:
        value += f',error="{error}"'
    answer = registry_error(401, "UNAUTHORIZED", message)
    headers = [(name, content) for name, content in answer.headers if name != "WWW-Authenticate"]
    return Response(answer.body, status=401, headers=[*headers, ("WWW-Authenticate", value)])


def page_size() -> int:
    """``n``: a whole number from 1 to 1000 (100 when absent); raises
    PaginationNumberInvalid."""
    text = request.args.get("n")
    if text is None:
        return DEFAULT_PAGE_SIZE
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise PaginationNumberInvalid(f"n must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(text)


def catalog_subject(token: str) -> Subject:
    """Who the bearer JWT ``token`` stands for (see the module). A good token without a catalog
    entry raises InsufficientScope: podman sends one first (a token for no scope) and asks for
    the challenge's scope next, so that is no failed login. Any other refused token is written
    to the audit trail and raises AuthenticationFailed."""
    services = state()
    try:
        verified = token_verifier(services).verify(token)
        if verified.names(*CATALOG):
            return token_subject(verified, anonymous=True)
    except AuthenticationFailed as error:
        services.audit.record(Event("login.failed", detail=f"catalog bearer token: "
                                                           f"{error.message}"), actor="")
        raise
    raise InsufficientScope("the bearer token was not issued for registry:catalog")


def next_link(last: str, size: int) -> str:
    """The registry's ``Link`` to the page after ``last``."""
    return f'</v2/_catalog?{urlencode([("last", last), ("n", str(size))])}>; rel="next"'


@bp.get("/_catalog")
def catalog() -> Response:
    """One page of the catalog (see the module). 401 with the registry's challenge without a
    good catalog token; raises PaginationNumberInvalid (400) for a bad ``n``."""
    auth = authorization(request.environ.get("HTTP_AUTHORIZATION"))
    if auth is None or auth.type != "bearer" or not auth.token:
        return challenge("authentication required")
    try:
        subject = catalog_subject(auth.token)
    except AuthenticationFailed as error:
        reason = "insufficient_scope" if isinstance(error, InsufficientScope) else "invalid_token"
        return challenge(error.message, reason)
    set_actor(subject.name or "")
    size = page_size()
    names = state().repos.tagged_names(subject, request.args.get("last", ""), size + 1)
    response = jsonify(repositories=names[:size])
    if len(names) > size:
        response.headers["Link"] = next_link(names[size - 1], size)
    return response

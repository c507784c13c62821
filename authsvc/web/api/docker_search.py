"""``GET /v1/search``: ``docker search`` (Docker Hub's v1 search API).

Docker sends the request to the *registry's* address, so a reverse proxy in front of the
registry routes ``/v1/`` here (``authsvc proxy-config``). The results are the repositories
the caller may pull, exactly as ``GET /api/v1/repositories`` lists them.

Credentials: Basic with an empty user and password (``Basic Og==``, what Docker sends when
logged out) searches anonymously; Basic with a password or an access token and a Bearer
access token are checked as the API checks them (lockout and audit apply); a Bearer JWT is one
authsvc issued (Docker's identity-token flow asks for ``registry:catalog:search``): it must hold
that action (or ``*``), its subject must be an enabled user now, and an access token's limit
recorded in it applies.

No Authorization header at all is 401. Docker always sends one; podman 4.3 (containers/image
5.23) sends none whatever it has stored, and falls back to ``GET /v2/_catalog`` with its
credentials only when this answers anything but 200: authsvc answers that too
(``authsvc.web.api.v2_catalog``), so ``podman search`` lists what its caller may pull.
"""

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from authsvc.core.policy import ANONYMOUS, CATALOG, SEARCH, Subject
from authsvc.core.token_verification import TokenVerifier, VerifiedToken
from authsvc.db import access_tokens
from authsvc.db.audit import Event, current_origin, set_actor
from authsvc.db.models import Repository
from authsvc.db.services import Services, services_of
from authsvc.errors import AuthenticationFailed, Forbidden, InvalidRequest, NotFound
from authsvc.pki.key_set import read_key_set
from authsvc.web.api.auth_header import authorization, subject_from_header

bp = Blueprint("docker_search", __name__, url_prefix="/v1")

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
MAX_PAGE = 1_000_000
MAX_QUERY_LENGTH = 255
#: The 401 for a request without any Authorization header (podman's).
CREDENTIALS_REQUIRED = ("authentication required: send credentials, or "
                        "'Authorization: Basic Og==' (an empty user and password) to search "
                        "the public repositories")


def state() -> Services:
    return services_of(current_app)


def _whole_number(name: str, default: int, low: int, high: int) -> int:
    """The query parameter ``name`` (``default`` when absent); raises InvalidRequest unless it
    is a whole number from ``low`` to ``high``."""
    text = request.args.get(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise InvalidRequest(f"{name} must be a whole number from {low} to {high}")
    return int(text)


def token_verifier(services: Services) -> TokenVerifier:
    """A verifier of authsvc's own JWTs: the published signing keys, ISSUER, SERVICES."""
    return TokenVerifier(read_key_set(services.certs, services.config["KID_FORMAT"]).keys,
                         services.config["ISSUER"], services.config["SERVICES"])


def token_subject(verified: VerifiedToken, *, anonymous: bool) -> Subject:
    """Who ``verified`` stands for now: ANONYMOUS for an anonymous token (``sub`` "") when
    ``anonymous`` allows it, else the enabled user its subject names, an admin only if still
    one, within the access-token limit the token records.

    Raises AuthenticationFailed when the subject is no enabled user now.
    """
    if anonymous and not verified.subject:
        return ANONYMOUS
    services = state()
    try:
        user = services.accounts.get_user(verified.subject) if verified.subject else None
    except NotFound:
        user = None
    if user is None or user.disabled:
        raise AuthenticationFailed("invalid bearer token: its subject is no enabled user")
    return Subject(user.username, admin=user.admin, limit=verified.limit)


def jwt_subject(token: str) -> Subject:
    """The enabled user a JWT of authsvc's that holds ``registry:catalog:search`` stands for.

    Raises AuthenticationFailed for a bad token or a subject that is no enabled user now,
    Forbidden for a good token without the search action.
    """
    verified = token_verifier(state()).verify(token)
    subject = token_subject(verified, anonymous=False)
    if not verified.holds(*CATALOG, SEARCH):
        raise Forbidden("the bearer token does not hold registry:catalog:search")
    return subject


def _audited_jwt_subject(token: str) -> Subject:
    """``jwt_subject``, with a refused token written to the audit trail."""
    try:
        return jwt_subject(token)
    except AuthenticationFailed as error:
        state().audit.record(Event("login.failed", detail=f"search bearer token: "
                                                          f"{error.message}"), actor="")
        raise


def search_subject(header: str | None) -> Subject:
    """Who is searching, from the raw Authorization ``header`` (None when absent): see the
    module. Raises AuthenticationFailed (no header included), Forbidden, or TooManyAttempts
    past a lockout limit."""
    if header is None:
        raise AuthenticationFailed(CREDENTIALS_REQUIRED)
    auth = authorization(header)
    if (auth is not None and auth.type == "basic" and not auth.get("username")
            and not auth.get("password")):
        return ANONYMOUS
    if (auth is not None and auth.type == "bearer" and auth.token
            and not auth.token.startswith(access_tokens.PREFIX)):
        return _audited_jwt_subject(auth.token)
    address = current_origin().remote_addr or None
    return subject_from_header(header, state().credentials, address, bearer=True,
                               anonymous=False)


def result_json(repo: Repository) -> dict[str, Any]:
    """One search result as Docker Hub gives it; single-component names are the admins'
    (like Docker Hub's library images), so official."""
    return {"name": repo.name, "description": repo.description or "",
            "star_count": 0, "is_official": "/" not in repo.name, "is_automated": False}


@bp.get("/search")
def search() -> Response:
    """Docker Hub's v1 answer: ``num_results``, ``query``, ``page``, ``num_pages``,
    ``page_size`` and the page of ``results``. Raises InvalidRequest (400) for a bad ``n``
    (1–100), ``page`` (from 1) or a ``q`` over 255 characters; AuthenticationFailed (401)
    for wrong or missing credentials."""
    query = request.args.get("q", "")
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidRequest(f"q must be at most {MAX_QUERY_LENGTH} characters")
    size = _whole_number("n", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    page = _whole_number("page", 1, 1, MAX_PAGE)
    subject = search_subject(request.environ.get("HTTP_AUTHORIZATION"))
    set_actor(subject.name or "")
    repos, total = state().repos.search(subject, query, (page - 1) * size, size)
    return jsonify(num_results=total, query=query, page=page, num_pages=-(-total // size),
                   page_size=size, results=[result_json(repo) for repo in repos])

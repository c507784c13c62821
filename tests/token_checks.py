"""What every answer of the realm and the admin API must look like, whatever was sent: the
fuzz tests' response checks (tests/test_token_fuzz_*.py).

No status outside the expected set, no stack trace, JSON in the registry's or OAuth2's error
shape with the headers its status needs, and tokens that carry the fields PROTOCOL §1.3 names
and stay inside what the small fuzz world's subjects may hold.
"""

import json
import re
from typing import Any

from authsvc.core.scopes import MAX_NAME_LENGTH
from tests.token_helpers import Decode

GET_STATUSES = {200, 400, 401, 413, 429}
POST_STATUSES = {200, 400, 401, 413, 429}
OAUTH_ERRORS = {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                "unsupported_grant_type", "invalid_scope", "temporarily_unavailable"}
REPOSITORY_ACTIONS = frozenset({"pull", "push", "delete"})
CATALOG = ("registry", "catalog")
#: What a catalog entry may hold: ``search`` and ``*`` are two separate actions there.
CATALOG_ACTIONS = frozenset({"*", "search"})
#: Error messages quote at most a few hundred characters of the input; escaping (``\\x00``,
#: ``\\U0001f600``) may make that a few thousand, never the megabyte that was sent.
MESSAGE_BOUND = 4096


def no_stack_trace(text: str) -> None:
    assert "Traceback" not in text, text[:2000]
    assert 'File "' not in text, text[:2000]


def body_of(response: Any, statuses: set[int]) -> Any:
    """Status in ``statuses``, a JSON body, and nothing that looks like a stack trace."""
    text = response.get_data(as_text=True)
    assert response.status_code in statuses, (response.status_code, text[:2000])
    no_stack_trace(text)
    for name, value in response.headers.items():
        no_stack_trace(f"{name}: {value}")
    assert response.mimetype == "application/json", (response.mimetype, text[:500])
    return json.loads(text)


def check_registry_error(response: Any, body: Any) -> None:
    """``{"errors": [{"code": …, "message": …}]}`` with the headers its status needs."""
    assert isinstance(body, dict) and set(body) == {"errors"}, body
    assert isinstance(body["errors"], list) and len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert {"code", "message"} <= set(error), body
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and error["message"], body
    assert len(error["message"]) <= MESSAGE_BOUND, len(error["message"])
    check_error_headers(response)


def check_oauth_error(response: Any, body: Any) -> None:
    """RFC 6749 §5.2: ``{"error": …, "error_description": …}``."""
    assert isinstance(body, dict) and set(body) == {"error", "error_description"}, body
    assert body["error"] in OAUTH_ERRORS, body
    assert isinstance(body["error_description"], str) and body["error_description"], body
    assert len(body["error_description"]) <= MESSAGE_BOUND, len(body["error_description"])
    check_error_headers(response)


def check_error_headers(response: Any) -> None:
    if response.status_code == 401 and "errors" in (response.json or {}):
        assert response.headers.get("WWW-Authenticate", "").startswith("Basic ")
    if response.status_code == 429:
        assert response.headers.get("Retry-After", "").isdigit()


def check_token_body(body: Any, decode: Decode) -> dict[str, Any]:
    """The fields every 200 carries (PROTOCOL §1.3); returns the verified claims."""
    assert {"token", "access_token", "expires_in", "issued_at"} <= set(body), body
    assert body["token"] == body["access_token"]
    assert isinstance(body["expires_in"], int) and body["expires_in"] >= 60
    claims = decode(body["token"])
    assert isinstance(claims["access"], list)
    for entry in claims["access"]:
        assert set(entry) == {"type", "name", "actions"}, entry
        actions = entry["actions"]
        assert actions == sorted(set(actions)), entry
        if (entry["type"], entry["name"]) == CATALOG:
            # two actions of their own: Docker's search, and * (the registry's whole catalog)
            assert set(actions) <= CATALOG_ACTIONS, entry
            continue
        assert set(actions) <= REPOSITORY_ACTIONS | {"*"}, entry
        assert "*" not in actions or actions == ["*"], entry
    return claims


#: The oracle's own repository path grammar (distribution's ``reference`` path components).
PATH_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)"
                     r"[a-z0-9]+)*)*")


def registry_path(name: str) -> str | None:
    """The oracle's reading of a requested name: the name itself, exactly as the registry sees
    it, when the registry can hold it (a repository path of at most 255 characters); None for
    one behind a ``host:port/`` prefix, which nothing is granted on."""
    return name if len(name) <= MAX_NAME_LENGTH and PATH_RE.fullmatch(name) else None


def check_small_world_grant(claims: dict[str, Any]) -> None:
    """The fuzz world holds alice (user), root (admin) and the public repository alice/pub:
    whatever the request, the token stays inside what its subject may hold (alice: her
    namespace, pull on alice/pub, search on the catalog)."""
    sub = claims["sub"]
    assert sub in ("", "alice", "root"), sub
    for entry in claims["access"]:
        actions = set(entry["actions"])
        if not actions or sub == "root":
            continue
        if sub == "alice" and (entry["type"], entry["name"]) == CATALOG:
            assert actions == {"search"}, (sub, entry)
            continue
        assert entry["type"] == "repository", (sub, entry)
        path = registry_path(entry["name"])
        if sub == "alice" and path is not None and path.startswith("alice/"):
            continue
        assert path == "alice/pub" and actions == {"pull"}, (sub, entry)


def check_get_response(response: Any, decode: Decode, statuses: set[int] = GET_STATUSES) -> None:
    body = body_of(response, statuses)
    if response.status_code == 200:
        check_small_world_grant(check_token_body(body, decode))
    else:
        check_registry_error(response, body)


def check_post_response(response: Any, decode: Decode) -> None:
    """OAuth2 errors, except 413: the body limit answers before the endpoint, in the registry
    format (tests/test_api_token.py::test_oversized_body_is_413_in_registry_error_format)."""
    body = body_of(response, POST_STATUSES)
    if response.status_code == 200:
        check_small_world_grant(check_token_body(body, decode))
        assert isinstance(body["scope"], str)
    elif response.status_code == 413 and "errors" in body:
        check_registry_error(response, body)
    else:
        check_oauth_error(response, body)

"""The four kinds of request the benchmark measures, and each one's requests: paths, headers
and bodies (the seeded site's users and repositories, bench/seed.py)."""

from __future__ import annotations

import base64
import urllib.parse
from dataclasses import dataclass

from bench.seed import BURST_REPOS, PASSWORD, PRIVATE_REPO, PUBLIC_REPO, USER

SERVICE = "registry"
CLIENT_ID = "docker"


@dataclass(frozen=True)
class Kind:
    name: str
    title: str
    #: authsvc's req/s target: at least this fraction of the ceiling's (the server alone,
    #: answering a fixed token body) in the same run.
    min_ceiling: float
    #: The same-run Python baseline authsvc is also compared with (shown, not judged):
    #: "baseline" (signs per request) or "bcrypt" (checks the password too).
    reference: str
    basic_auth: bool
    method: str = "GET"


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("anon", "anonymous pull of a public repository", 0.35, "baseline", False),
    Kind("basic", "Basic auth, push+pull on own repository", 0.30, "bcrypt", True),
    Kind("refresh", "OAuth2 refresh grant (POST /token)", 0.30, "baseline", False, "POST"),
    Kind("burst", "docker push burst: same Basic credentials, 10 scopes", 0.30, "bcrypt", True),
)}


def scope_query(*scopes: str) -> str:
    """The path of a ``GET /token`` for ``scopes``."""
    return "/token?" + urllib.parse.urlencode([("service", SERVICE)] + [("scope", s)
                                                                        for s in scopes])


ANON_PATH = scope_query(f"repository:{PUBLIC_REPO}:pull")
BASIC_PATH = scope_query(f"repository:{PRIVATE_REPO}:pull,push")
BURST_PATHS = [scope_query(f"repository:{repo}:pull,push") for repo in BURST_REPOS]
BASIC_HEADER = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
REFRESH_PATH = scope_query(f"repository:{PRIVATE_REPO}:pull,push") + (
    f"&offline_token=true&client_id={CLIENT_ID}")


def refresh_body(refresh_token: str) -> str:
    """The form of a refresh grant with ``refresh_token``."""
    return urllib.parse.urlencode({
        "grant_type": "refresh_token", "refresh_token": refresh_token, "service": SERVICE,
        "client_id": CLIENT_ID, "scope": f"repository:{PRIVATE_REPO}:pull,push"})


#: (method, path, body, headers)
Request = tuple[str, str, str | None, dict[str, str]]


def requests_for(kind: Kind, refresh_token: str) -> list[Request]:
    """(method, path, body, headers) of every distinct request of ``kind``."""
    basic = {"Authorization": BASIC_HEADER}
    if kind.name == "anon":
        return [("GET", ANON_PATH, None, {})]
    if kind.name == "basic":
        return [("GET", BASIC_PATH, None, basic)]
    if kind.name == "refresh":
        return [("POST", "/token", refresh_body(refresh_token),
                 {"Content-Type": "application/x-www-form-urlencoded"})]
    return [("GET", path, None, basic) for path in BURST_PATHS]


"""The kinds of search the benchmark measures (``--search``): who searches (anonymous on
Docker's ``GET /v1/search``, as ``docker search`` does when logged out; alice or the admin
with Basic auth on ``GET /api/v1/repositories``) for what (a ``q`` that matches many
repositories, a few, none, a name prefix, or many sorted by the last push), each kind a list of
queries that wrk sends in turn (``search_traffic``) so that no single cached plan or answer
makes it look fast."""

from __future__ import annotations

import base64
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from bench.load import Traffic
from bench.search_seed import MISSING_WORDS, RARE_WORDS, WORDS
from bench.seed import ADMIN, ADMIN_PASSWORD, PASSWORD, USER

#: Docker's v1 search page size (``docker search`` asks for 25).
V1_PAGE_SIZE = 25


@dataclass(frozen=True)
class SearchKind:
    name: str
    #: "anon" (``/v1/search``, ``Basic Og==`` as Docker sends when logged out), "user" (alice)
    #: or "admin" (Basic auth, ``/api/v1/repositories``).
    who: str
    #: "many", "few", "none", "prefix" (``match=prefix``) or "pushed" (``sort=pushed``).
    queries: str

    @property
    def v1(self) -> bool:
        return self.who == "anon"

    @property
    def title(self) -> str:
        return {"anon": "anonymous, /v1/search", "user": f"{USER}, Basic",
                "admin": f"{ADMIN}, Basic"}[self.who] + ", " + {
            "many": "q matching many", "few": "q matching a few", "none": "q matching none",
            "prefix": "match=prefix", "pushed": "q matching many, sort=pushed"}[self.queries]


SEARCH_KINDS: dict[str, SearchKind] = {k.name: k for k in (
    *(SearchKind(f"{who}-{q}", who, q) for who in ("user", "admin")
      for q in ("many", "few", "none", "prefix", "pushed")),
    *(SearchKind(f"anon-{q}", "anon", q) for q in ("many", "few", "none")),
)}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


#: What Docker sends to ``/v1/search`` when logged out: an empty user and password.
ANONYMOUS_BASIC = "Basic Og=="


def headers(kind: SearchKind) -> dict[str, str]:
    """The request headers of ``kind``."""
    if kind.who == "anon":
        return {"Authorization": ANONYMOUS_BASIC}
    return {"Authorization": basic(*((USER, PASSWORD) if kind.who == "user"
                                     else (ADMIN, ADMIN_PASSWORD)))}


def queries(kind: SearchKind, namespaces: int) -> list[str]:
    """The ``q`` values of ``kind`` on a site seeded with ``namespaces`` namespaces."""
    if kind.queries in ("many", "pushed"):
        return ["app", "ns", *(f"app{j}" for j in range(10)), *(f"ns{d}" for d in range(1, 10)),
                "s/app"]
    if kind.queries == "few":
        return list(RARE_WORDS)
    if kind.queries == "none":
        return list(MISSING_WORDS)
    found = []  # prefixes: a whole namespace, one repository, many namespaces
    for d in range(20):
        n = (d * 7919 + 13) % namespaces
        found.append((f"ns{n}", f"ns{n}/", f"ns{n}/{WORDS[d % len(WORDS)]}",
                      f"ns{n // 100}")[d % 4])
    return found


def paths(kind: SearchKind, namespaces: int) -> list[str]:
    """The request paths of ``kind``: one per query."""
    found = []
    for q in queries(kind, namespaces):
        if kind.v1:
            found.append(f"/v1/search?{urllib.parse.urlencode({'q': q, 'n': V1_PAGE_SIZE})}")
            continue
        params = {"q": q, **({"match": "prefix"} if kind.queries == "prefix" else {}),
                  **({"sort": "pushed"} if kind.queries == "pushed" else {})}
        found.append(f"/api/v1/repositories?{urllib.parse.urlencode(params)}")
    return found


def search_traffic(kind: SearchKind, folder: Path, namespaces: int) -> Traffic:
    """What wrk sends for ``kind``: a Lua script (written to ``folder``) that sends its paths
    in turn, each wrk thread starting at another one."""
    script = folder / f"search-{kind.name}.lua"
    listed = ",\n".join(f'  "{p}"' for p in paths(kind, namespaces))
    script.write_text(
        f"local paths = {{\n{listed}\n}}\n"
        "local threads = 0\n"
        "function setup(thread)\n"
        "  thread:set(\"first\", threads * 7)\n"
        "  threads = threads + 1\n"
        "end\n"
        "local i = nil\n"
        "request = function()\n"
        "  i = (i or first or 0) % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\n'
        "end\n")
    return Traffic(kind.name, paths(kind, namespaces)[0],
                   tuple(f"{k}: {v}" for k, v in headers(kind).items()), script)

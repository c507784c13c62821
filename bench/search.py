"""``--search``: authsvc's repository search with 100k repositories (× ``--scale``) on each
database asked for: a site (as ``--growth`` makes it) with the search data (bench/search_seed.py),
then every search kind (bench/search_kinds.py) at ``--connections`` and at one connection,
judged against p99 ≤ 50 ms; then what the database does with each kind's SQL
(bench/search_sql.py)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from statistics import median
from typing import Any

from sqlalchemy.engine import make_url

from bench import procs
from bench.load import Traffic, measure, warm_up
from bench.procs import BenchError, log, python, run_checked
from bench.profiling import profile
from bench.report import P99_TARGET_MS, print_search, rss_json
from bench.search_kinds import SEARCH_KINDS, SearchKind, headers, paths, search_traffic
from bench.search_seed import namespace_count
from bench.servers import Server, send, start_servers, stop_servers
from bench.site import BCRYPT_ROUNDS, PG_URL, make_site, seed_result

#: Requests of each kind sent once before measuring (spread over its queries).
PREFLIGHT_QUERIES = 5


def total_of(kind: SearchKind, body: bytes) -> int:
    """The number of matches an answer of ``kind`` reports."""
    answer = json.loads(body)
    return int(answer["num_results"] if kind.v1 else answer["total"])


def preflight(server: Server, ca: Path, kind: SearchKind, namespaces: int) -> list[int]:
    """Some requests of ``kind`` once each: 200, and no match for the queries that match
    nothing, some for the others (authsvc must not look fast by finding nothing; rare words
    may all be private to alice and anonymous callers). Returns the numbers of matches;
    raises BenchError."""
    listed = paths(kind, namespaces)
    step = max(1, len(listed) // PREFLIGHT_QUERIES)
    totals = []
    for path in listed[::step][:PREFLIGHT_QUERIES]:
        status, body = send(server, ca, "GET", path, headers=headers(kind))
        if status != 200:
            raise BenchError(f"search {kind.name}: GET {path} answered {status}: {body[:300]!r}")
        totals.append(total_of(kind, body))
    expected_none = kind.queries == "none"
    if expected_none != (max(totals) == 0) and (kind.queries != "few" or kind.who == "admin"):
        raise BenchError(f"search {kind.name}: {totals} matches for {listed[:PREFLIGHT_QUERIES]}")
    return totals


def check_filtering(matched: dict[str, list[int]]) -> None:
    """Anonymous callers must see no more than alice, alice no more than the admin, and the
    admin more than anonymous callers (over the queries of ``many`` and ``few``, the same for
    all); raises BenchError."""
    seen = {who: sum(sum(matched.get(f"{who}-{q}", [])) for q in ("many", "few"))
            for who in ("anon", "user", "admin")
            if f"{who}-many" in matched and f"{who}-few" in matched}
    ordered = [seen[who] for who in ("anon", "user", "admin") if who in seen]
    if ordered != sorted(ordered) or (len(ordered) > 1 and ordered[0] == ordered[-1]):
        raise BenchError(f"search results are not filtered by who asks: {seen}")


def wait_idle(server: Server, limit: float = 180.0) -> None:
    """Wait (at most ``limit`` seconds) until ``server`` has answered what the last run left
    queued (wrk stops sending, the server does not stop answering): under 10 % of a core over
    half a second."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = procs.cpu_seconds(server.pids())
        time.sleep(0.5)
        if procs.cpu_seconds(server.pids()) - before < 0.05:
            return
    log(f"authsvc still busy after {limit:.0f} s; going on")


def seed(site_url: str, args: argparse.Namespace, env: dict[str, str], src: Path,
         database: str) -> dict[str, Any]:
    log(f"seeding search data (scale {args.scale}) into {database}")
    seeded: dict[str, Any] = seed_result(run_checked(
        [python(), "-m", "bench.seed", "search", site_url, "--scale", str(args.scale),
         "--bcrypt-rounds", str(BCRYPT_ROUNDS)], env, src, timeout=7200, stream=True))
    log(f"seeded in {seeded['seconds']} s: {seeded}")
    return seeded


def measure_kind(server: Server, kind: SearchKind, traffic: Traffic, args: argparse.Namespace,
                 matches: float, database: str, url: str) -> list[dict[str, Any]]:
    """``kind`` at ``--connections`` (after a warm-up) and at one connection, each run once
    the server has answered what the one before left queued; judged against p99 <= 50 ms
    (and some requests answered, none in error)."""
    runs = []
    for connections in (args.connections, 1):
        log(f"{database}: search {kind.name}, {connections} connection(s)")
        threads = args.threads if connections > 1 else 1
        if connections > 1 and args.warmup:
            wait_idle(server)
            warm_up(server, traffic, args.warmup, connections, threads)
        wait_idle(server)
        database_pids = (procs.postgres_pids(make_url(url).database or "")
                         if database == "postgresql" else [])
        db_cpu = procs.cpu_seconds(database_pids)
        run = measure(server, traffic, args, connections=connections, threads=threads,
                      warmup=False)
        db_cpu = procs.cpu_seconds(database_pids) - db_cpu
        # PostgreSQL's CPU is the database's part of the work, not noise from elsewhere.
        elapsed = run.get("seconds") or args.duration
        run["other_cpu_pct"] = max(0.0, run["other_cpu_pct"] - round(100 * db_cpu / elapsed))
        run["db_cpu_ms_per_req"] = (round(1000 * db_cpu / run["requests"], 3)
                                    if run.get("requests") and database_pids else None)
        run.update(matches=matches, title=kind.title,
                   met=bool(run.get("requests")) and run["p99_ms"] is not None
                   and run["p99_ms"] <= P99_TARGET_MS and not run["errors"])
        runs.append(run)
    return runs


def search_database(database: str, args: argparse.Namespace, tmp: Path,
                    src: Path) -> dict[str, Any]:
    """The site on ``database``, its data, every kind measured (and profiled with
    ``--profile``), then the plans: what the report and the JSON results hold of it."""
    kinds = [SEARCH_KINDS[k] for k in args.kinds]
    namespaces = namespace_count(args.scale)
    site = make_site(tmp / f"search-{database}", database, args.server_threads, src, PG_URL,
                     args.settings)
    seeded = seed(site.url, args, site.env, src, database)
    server = start_servers(["authsvc"], site, args, tmp)[0]
    matched = {kind.name: preflight(server, site.ca, kind, namespaces) for kind in kinds}
    check_filtering(matched)
    runs: list[dict[str, Any]] = []
    profiles: dict[str, Any] = {}
    for kind in kinds:
        traffic = search_traffic(kind, site.root, namespaces)
        runs += measure_kind(server, kind, traffic, args, median(matched[kind.name]), database,
                             site.url)
        if args.profile:
            log(f"{kind.name}: profiling the authsvc workers")
            wait_idle(server)
            summary = profile(server, traffic, args, tmp, src)
            if summary:
                profiles[kind.name] = summary
    stop_servers([server])
    log(f"{database}: the plans and the database's time for each kind's SQL")
    plans = seed_result(run_checked(
        [python(), "-m", "bench.search_sql", "--scale", str(args.scale),
         "--kinds", ",".join(args.kinds)], site.env, src, timeout=3600))
    return {"seeded": seeded, "runs": runs, "plans": plans, "profiles": profiles,
            "rss_mib": rss_json([server])["authsvc"]}


def search_mode(args: argparse.Namespace, tmp: Path, report: dict[str, Any],
                src: Path) -> bool:
    """Each database in turn (see the module); prints its report. Returns whether every run
    met p99 <= 50 ms without errors."""
    ok = True
    for database in args.databases:
        result = search_database(database, args, tmp, src)
        print_search(database, report["authsvc"], result["seeded"], args, result["runs"],
                     result["plans"], result["profiles"])
        report.setdefault("search", {})[database] = result
        ok = ok and all(run["met"] for run in result["runs"])
    return ok

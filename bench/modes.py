"""The benchmark's modes: the normal run (also ``--quick`` and ``--profile``: every server,
every kind, baselines first) and ``--growth`` (authsvc alone on a 10-user site and on one with
the growth data, measured alternately)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.kinds import KINDS, Kind
from bench.load import measure, traffic, write_scripts
from bench.procs import log, python, run_checked
from bench.profiling import profile
from bench.report import GROWTH_TARGET, judge, print_growth, print_normal, rss_json
from bench.servers import Server, get_refresh_token, preflight, start_servers, stop_servers
from bench.site import BCRYPT_ROUNDS, PG_SMALL_URL, PG_URL, Site, make_site, seed_result

#: Busiest-worker shares further apart than this make two runs' latencies incomparable.
IMBALANCE_POINTS = 25
#: Other processes' CPU (% of one core) further apart than this: the same.
NOISE_POINTS = 50


def normal_mode(args: argparse.Namespace, tmp: Path, report: dict[str, Any],
                src: Path) -> bool:
    """Every server, every kind (the baselines first, then authsvc), a warm-up before each
    run; the table, the workers' RSS and (``--profile``) where the time goes. Returns whether
    every target was met."""
    kinds = [KINDS[k] for k in args.kinds]
    site = make_site(tmp / "site", args.database, args.server_threads, src,
                     settings=args.settings)
    roles = ["baseline", "gthread"] + (["bcrypt"] if any(k.reference == "bcrypt" for k in kinds)
                                       else [])
    servers = start_servers(roles + ["authsvc"], site, args, tmp)
    by_role = {s.role: s for s in servers}
    refresh_token = get_refresh_token(by_role["authsvc"], site.ca)
    scripts = write_scripts(tmp, refresh_token)
    for server in servers:
        for kind in kinds:
            if server.role != "bcrypt" or kind.basic_auth:
                preflight(server, site.ca, kind, refresh_token)
    runs: list[dict[str, Any]] = []
    profiles: dict[str, Any] = {}
    for kind in kinds:
        runs += measure_kind(kind, by_role, scripts, args)
        if args.profile:
            log(f"{kind.name}: profiling an authsvc worker")
            summary = profile(by_role["authsvc"], traffic(kind, scripts), args, tmp, src)
            if summary:
                profiles[kind.name] = summary
    stop_servers(servers)
    print_normal(report["authsvc"], args, runs, servers, profiles)
    report.update({"runs": runs, "rss_mib": rss_json(servers), "profiles": profiles})
    return all(run.get("met", True) for run in runs) and not any(r["errors"] for r in runs)


def measure_kind(kind: Kind, by_role: dict[str, Server], scripts: dict[str, Path],
                 args: argparse.Namespace) -> list[dict[str, Any]]:
    """The runs of one kind: its reference servers first, then authsvc, judged against them."""
    runs: list[dict[str, Any]] = []
    references: dict[str, dict[str, Any]] = {}
    for role in ("baseline", "bcrypt") if kind.basic_auth else ("baseline", "gthread"):
        if role in by_role:
            log(f"{kind.name}: {by_role[role].label}")
            references[role] = measure(by_role[role], traffic(kind, scripts), args)
            runs.append(references[role])
    log(f"{kind.name}: authsvc")
    run = measure(by_role["authsvc"], traffic(kind, scripts), args)
    judge(kind, run, references)
    runs.append(run)
    return runs


def growth_mode(args: argparse.Namespace, tmp: Path, report: dict[str, Any],
                src: Path) -> bool:
    """Two sites on one database engine: the 10-user one and the same plus the growth data,
    both served at once and measured alternately (kind by kind), so that load from elsewhere
    on the machine hits both alike."""
    kinds = [KINDS[k] for k in args.kinds]
    ok = True
    for database in args.databases:
        small = make_site(tmp / f"small-{database}", database, args.server_threads, src,
                          PG_SMALL_URL, args.settings)
        big = make_site(tmp / f"growth-{database}", database, args.server_threads, src, PG_URL,
                        args.settings)
        log(f"seeding growth data (scale {args.scale}) into {database}")
        seeded = seed_result(run_checked(
            [python(), "-m", "bench.seed", "bulk", big.url, "--scale", str(args.scale),
             "--bcrypt-rounds", str(BCRYPT_ROUNDS)], big.env, src, timeout=7200, stream=True))
        log(f"seeded in {seeded['seconds']} s: {seeded}")
        cases = {"10 users": small, "growth": big}
        servers = {case: start_servers(["authsvc"], site, args, tmp)[0]
                   for case, site in cases.items()}
        pairs = measure_pairs(database, kinds, cases, servers, args)
        stop_servers(list(servers.values()))
        for small_run, big_run in pairs:
            judge_growth(small_run, big_run)
            ok = ok and big_run["met"] is not False
        rss = print_growth(database, report["authsvc"], seeded, args, pairs, servers)
        report.setdefault("growth", {})[database] = {
            "seeded": seeded, "runs": [r for pair in pairs for r in pair], "rss_mib": rss}
    return ok


Pair = tuple[dict[str, Any], dict[str, Any]]


def measure_pairs(database: str, kinds: list[Kind], cases: dict[str, Site],
                  servers: dict[str, Server], args: argparse.Namespace) -> list[Pair]:
    """Each kind at ``--connections`` and at one connection, on the 10-user site and on the
    growth site in turn: (10-user run, growth run) pairs."""
    scripts = {}
    for case, site in cases.items():
        token = get_refresh_token(servers[case], site.ca)
        scripts[case] = write_scripts(site.root, token)
        for kind in kinds:
            preflight(servers[case], site.ca, kind, token)
    pairs = []
    for kind in kinds:
        for connections in (args.connections, 1):
            pair = {}
            for case in cases:
                log(f"{database} {case}: {kind.name}, {connections} connection(s)")
                run = measure(servers[case], traffic(kind, scripts[case]), args,
                              connections=connections,
                              threads=args.threads if connections > 1 else 1,
                              warmup=connections > 1)
                run["case"] = case
                pair[case] = run
            pairs.append((pair["10 users"], pair["growth"]))
    return pairs


def judge_growth(small_run: dict[str, Any], big_run: dict[str, Any]) -> None:
    """Add the growth run's ratios to the 10-user run, and whether it met the target (None:
    not judged, and why)."""
    for key in ("p50_ms", "p99_ms", "rps", "cpu_ms_per_req"):
        big_run[key.split("_")[0] + "_ratio"] = (
            big_run[key] / small_run[key] if small_run[key] and big_run[key] else None)
    # With several connections, the server may put them all on one worker in one run
    # and spread them over both in the other; latency and CPU per request then say
    # more about that than about the data, so such a pair is not judged (the
    # one-connection pair of the same kind always is).
    # The same when the rest of the machine was much busier during one of the two.
    tops = (small_run["top_worker_pct"], big_run["top_worker_pct"])
    lopsided = (big_run["connections"] > 1 and None not in tops
                and abs(tops[0] - tops[1]) > IMBALANCE_POINTS)
    noisy = (big_run["connections"] > 1 and abs(
        small_run["other_cpu_pct"] - big_run["other_cpu_pct"]) > NOISE_POINTS)
    big_run["not_judged"] = ("workers spread unlike" if lopsided else
                             "machine load differed" if noisy else None)
    big_run["met"] = None if big_run["not_judged"] else (
        big_run["p50_ratio"] is not None and big_run["p50_ratio"] <= GROWTH_TARGET
        and not big_run["errors"] and not small_run["errors"])

"""The benchmark's modes: the normal run (also ``--quick`` and ``--profile``: every server,
every kind, baselines first) and ``--growth`` (authsvc alone on a 10-user site and on one with
the growth data, measured alternately)."""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from bench.kinds import KINDS, Kind
from bench.load import measure, traffic, write_scripts
from bench.procs import log, python, run_checked
from bench.profiling import profile
from bench.report import (
    GROWTH_TARGET,
    P99_TARGET_MS,
    RSS_TARGET,
    judge,
    print_growth,
    print_normal,
    rss_json,
    rss_ratios,
)
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
    roles = ["ceiling", "baseline", "gthread"] + (
        ["bcrypt"] if any(k.reference == "bcrypt" for k in kinds) else [])
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
    references: dict[str, dict[str, dict[str, Any]]] = {}
    for number in range(1, args.passes + 1):
        for kind in kinds:
            runs += measure_kind(kind, by_role, scripts, args, number,
                                 references.setdefault(kind.name, {}))
    for kind in kinds:
        if args.profile:
            log(f"{kind.name}: profiling an authsvc worker")
            summary = profile(by_role["authsvc"], traffic(kind, scripts), args, tmp, src)
            if summary:
                profiles[kind.name] = summary
    stop_servers(servers)
    verdicts = [verdict(kind, runs) for kind in kinds]
    print_normal(report["authsvc"], args, runs, verdicts, servers, profiles)
    report.update({"runs": runs, "verdicts": verdicts, "rss_mib": rss_json(servers),
                   "rss_ratio_to_baseline": rss_ratios(servers),
                   "profiles": profiles})
    memory = rss_ratios(servers).values()
    return all(v["met"] for v in verdicts) and all(
        r is not None and r <= RSS_TARGET for r in memory)


def measure_kind(kind: Kind, by_role: dict[str, Server], scripts: dict[str, Path],
                 args: argparse.Namespace, number: int,
                 references: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs of one kind in pass ``number``: the ceiling (and, in the first pass, the
    Python baselines, kept in ``references``), then authsvc, judged against this pass's
    ceiling."""
    runs: list[dict[str, Any]] = []
    roles = ["ceiling"]
    if number == 1:
        roles += ["baseline", "bcrypt"] if kind.basic_auth else ["baseline", "gthread"]
    for role in roles:
        if role in by_role:
            log(f"{kind.name}: {by_role[role].label}, pass {number}")
            references[role] = measure(by_role[role], traffic(kind, scripts), args)
            references[role]["pass"] = number
            runs.append(references[role])
    log(f"{kind.name}: authsvc, pass {number}")
    run = measure(by_role["authsvc"], traffic(kind, scripts), args)
    run["pass"] = number
    judge(kind, run, references)
    runs.append(run)
    return runs


def verdict(kind: Kind, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """``kind`` over its passes: the medians of authsvc's ratios to each pass's ceiling and of
    its p99, the worst p99, the errors, and whether the targets are met on the medians (one
    pass alone moves by 10-30 % on two cores shared with wrk)."""
    ours = [r for r in runs if r["kind"] == kind.name and r["server"] == "authsvc"]
    ratios = [r["ratio"] for r in ours if r.get("ratio") is not None]
    p99s = [r["p99_ms"] for r in ours if r["p99_ms"] is not None]
    result: dict[str, Any] = {
        "kind": kind.name, "passes": len(ours),
        "ratio": statistics.median(ratios) if ratios else None,
        "cpu_ratio": statistics.median(c for r in ours if (c := r.get("cpu_ratio")))
        if any(r.get("cpu_ratio") for r in ours) else None,
        "rps": statistics.median(r["rps"] for r in ours) if ours else None,
        "p99_ms": statistics.median(p99s) if p99s else None,
        "worst_p99_ms": max(p99s) if p99s else None,
        "errors": sum(r["errors"] for r in ours),
        "target": ours[0]["target"] if ours else ""}
    result["met"] = (result["ratio"] is not None and result["ratio"] >= kind.min_ceiling
                     and result["p99_ms"] is not None and result["p99_ms"] <= P99_TARGET_MS
                     and not result["errors"])
    return result


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

"""``--metrics-cost``: what the Prometheus metrics cost on ``/token``. Two sites alike (each its
own database, so neither server's writes land in the other's), each served by ``authsvc
serve``, one with metrics off (the default) and one on (``METRICS_TOKEN`` set: every request
timed by route, every token counted, values in the multi-process files), measured alternately
kind by kind, several rounds each, the order swapped every round so that neither side always
runs first. Target: metrics cost at most 5 % of a token request.

The judged figure is the cost itself: what metrics add to one token request (the counter, the
timing and the histogram: ``metrics_call_us``), timed in this process over 200,000 calls, as a
share of the server CPU per request measured with metrics off. The end-to-end comparison is
shown beside it, but on two cores shared with wrk it resolves about ±5 % at best:
``--control`` runs it with metrics off on both sides, and identical servers then differ by up
to ±10 % a round and by 0.95-1.02 after both phases. It is judged only against a gross cost
(a ratio below ``GROSS_RATIO``), which no noise of that size explains.
"""

from __future__ import annotations

import argparse
import math
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.kinds import KINDS, Kind
from bench.load import measure, traffic, write_scripts
from bench.procs import BenchError, log
from bench.servers import Server, get_refresh_token, preflight, send, start_servers, stop_servers
from bench.site import PG_SMALL_URL, PG_URL, Site, make_site

#: What metrics add to a token request, at most this share of its server CPU.
TARGET_SHARE = 0.05
#: The end-to-end comparison fails below this median ratio (on/off req/s): a cost no noise
#: explains.
GROSS_RATIO = 0.90
#: Alternating rounds per kind and phase (each round measures off and on once).
ROUNDS = 3
SIDES = ("off", "on")


def metrics_cost_mode(args: argparse.Namespace, tmp: Path, report: dict[str, Any],
                      src: Path) -> bool:
    """Two phases, each with its own two sites and servers: the metrics-off one made and
    started first, then the metrics-on one first (``--control`` runs showed that whichever
    server comes second runs 2-7 % slower with metrics off on both, the same on every kind;
    the two phases cancel that). Every kind in ``ROUNDS`` alternating rounds per phase; the
    table of req/s and CPU per request with metrics off and on, and their ratios. Returns
    whether every kind met the target."""
    kinds = [KINDS[k] for k in args.kinds]
    token = secrets.token_hex(24)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        kind.name: {side: [] for side in SIDES} for kind in kinds}
    counted = 0.0
    for phase, order in enumerate((SIDES, tuple(reversed(SIDES))), start=1):
        counted += measure_phase(args, tmp / f"phase-{phase}", src, kinds, order, token,
                                 runs, phase)
    rows = [summary(kind.name, runs[kind.name]) for kind in kinds]
    call_us = metrics_call_us()
    for row in rows:
        judge_cost(row, call_us)
    print_cost(args, rows, counted, call_us)
    report["metrics_cost"] = {"rows": rows, "tokens_counted": counted,
                              "metrics_call_us": call_us}
    return all(row["met"] for row in rows)


def measure_phase(args: argparse.Namespace, tmp: Path, src: Path, kinds: list[Kind],
                  order: tuple[str, ...], token: str,
                  runs: dict[str, dict[str, list[dict[str, Any]]]], phase: int) -> float:
    """One phase: the sites made and the servers started in ``order``, each kind measured in
    ``ROUNDS`` rounds into ``runs``; returns how many tokens the metrics-on server counted."""
    sites = {side: make_site(tmp / side, args.database, args.server_threads, src,
                             PG_URL if side == "on" else PG_SMALL_URL,
                             {**args.settings, **({"METRICS_TOKEN": token}
                                                  if side == "on" and not args.control
                                                  else {})})
             for side in order}
    servers = {side: start_servers(["authsvc"], sites[side], args, tmp)[0] for side in order}
    try:
        if not args.control:
            check_metrics(servers, sites, token)
        scripts = {}
        for side in order:
            refresh_token = get_refresh_token(servers[side], sites[side].ca)
            scripts[side] = write_scripts(sites[side].root, refresh_token)
            for kind in kinds:
                preflight(servers[side], sites[side].ca, kind, refresh_token)
        for kind in kinds:
            for round_ in range(ROUNDS):
                for side in order if round_ % 2 == 0 else tuple(reversed(order)):
                    log(f"{kind.name}: metrics {side}, phase {phase}, round {round_ + 1} "
                        f"of {ROUNDS}")
                    run = measure(servers[side], traffic(kind, scripts[side]), args)
                    run["phase"] = phase
                    runs[kind.name][side].append(run)
        return 0.0 if args.control else check_metrics(servers, sites, token)
    finally:
        stop_servers(list(servers.values()))


def metrics_call_us(calls: int = 200_000) -> float:
    """Microseconds of what metrics add to one token request (the token counted; the
    request timed, its route found and its latency observed: ``RequestTimer``'s work), timed
    here in multi-process mode on files of their own, best of three."""
    from authsvc.observability.metrics import metrics, use_multiprocess
    from authsvc.web.metrics import route_of

    environ = {"PATH_INFO": "/token"}
    clock = time.perf_counter
    with tempfile.TemporaryDirectory() as directory:
        use_multiprocess(Path(directory))
        counted = metrics()
        best = float("inf")
        for _ in range(3):
            started = clock()
            for _ in range(calls):
                began = clock()
                counted.tokens_issued["anonymous"].inc()
                counted.observe_request(route_of(environ), clock() - began)
            best = min(best, clock() - started)
    return 1e6 * best / calls


def check_metrics(servers: dict[str, Server], sites: dict[str, Site], token: str) -> float:
    """Metrics are really off on one (``/metrics`` 404) and on on the other; returns how many
    tokens the one with metrics on counted (every worker's, added up)."""
    status, _ = send(servers["off"], sites["off"].ca, "GET", "/metrics",
                     headers={"Authorization": f"Bearer {token}"})
    if status != 404:
        raise BenchError(f"metrics off: /metrics answered {status}, not 404")
    status, body = send(servers["on"], sites["on"].ca, "GET", "/metrics",
                        headers={"Authorization": f"Bearer {token}"})
    if status != 200:
        raise BenchError(f"metrics on: /metrics answered {status}: {body[:300]!r}")
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
               if line.startswith("authsvc_tokens_issued_total{"))


def summary(kind: str, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One kind's row: total req/s and CPU per request of each side over its rounds (all
    rounds count, so a noisy one weighs no more than its share), the ratios: each round's own,
    their median in each phase, and the geometric mean of the two phases' medians (judged)."""
    row: dict[str, Any] = {"kind": kind, "rounds": len(runs["off"])}
    for side in SIDES:
        done = runs[side]
        requests = sum(r.get("requests") or 0 for r in done)
        seconds = sum(r.get("seconds") or 0 for r in done)
        cpu = sum(r.get("server_cpu_s") or 0 for r in done)
        row[side] = {"rps": requests / seconds if seconds else 0.0,
                     "cpu_ms_per_req": 1000 * cpu / requests if requests else None,
                     "p99_ms": max((r.get("p99_ms") or 0) for r in done),
                     "errors": sum(r.get("errors") or 0 for r in done),
                     "rps_rounds": [round(r.get("rps") or 0) for r in done],
                     "other_cpu_pct": [r.get("other_cpu_pct") for r in done]}
    off, on = row["off"], row["on"]
    row["total_rps_ratio"] = on["rps"] / off["rps"] if off["rps"] else None
    row["cpu_ratio"] = (on["cpu_ms_per_req"] / off["cpu_ms_per_req"]
                        if on["cpu_ms_per_req"] and off["cpu_ms_per_req"] else None)
    phases: dict[int, list[float]] = {}
    for a, b in zip(runs["off"], runs["on"], strict=True):
        if a.get("rps"):
            phases.setdefault(a.get("phase", 1), []).append((b.get("rps") or 0) / a["rps"])
    row["round_ratios"] = {phase: [round(r, 3) for r in ratios]
                           for phase, ratios in phases.items()}
    medians = [statistics.median(ratios) for ratios in phases.values()]
    row["rps_ratio"] = (math.prod(medians) ** (1 / len(medians))
                        if medians and all(medians) else None)
    return row


def judge_cost(row: dict[str, Any], call_us: float) -> None:
    """Add the metrics calls' share of the request's CPU and whether the target is met."""
    cpu_ms = row["off"]["cpu_ms_per_req"]
    row["calls_share"] = call_us / (1000 * cpu_ms) if cpu_ms else None
    row["met"] = (row["calls_share"] is not None and row["calls_share"] <= TARGET_SHARE
                  and row["rps_ratio"] is not None and row["rps_ratio"] >= GROSS_RATIO
                  and not row["off"]["errors"] and not row["on"]["errors"])


def print_cost(args: argparse.Namespace, rows: list[dict[str, Any]], counted: float,
               call_us: float) -> None:
    print(f"\n== metrics cost on /token: metrics off vs "
          f"{'off (--control)' if args.control else 'on'}, 2 phases of {ROUNDS} alternating "
          "rounds per "
          f"kind; granian, {args.workers} workers x {args.server_threads} threads, "
          f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.database}")
    print(f"{'kind':<9}{'off req/s':>11}{'on req/s':>11}{'ratio':>8}{'total':>7}"
          f"{'off cpu ms':>12}{'on cpu ms':>11}{'cpu ratio':>11}{'calls %':>9}"
          f"{'p99 off/on ms':>16}  each round's ratio")
    for row in rows:
        off, on = row["off"], row["on"]
        cpu = f"{row['cpu_ratio']:.3f}" if row["cpu_ratio"] else "-"
        ratio = f"{row['rps_ratio']:.3f}" if row["rps_ratio"] else "-"
        total = f"{row['total_rps_ratio']:.3f}" if row["total_rps_ratio"] else "-"
        share = f"{100 * row['calls_share']:.1f}" if row["calls_share"] else "-"
        print(f"{row['kind']:<9}{off['rps']:>11,.0f}{on['rps']:>11,.0f}{ratio:>8}{total:>7}"
              f"{off['cpu_ms_per_req'] or 0:>12.3f}{on['cpu_ms_per_req'] or 0:>11.3f}{cpu:>11}"
              f"{share:>9}{off['p99_ms']:>8.1f}/{on['p99_ms']:<7.1f}  {row['round_ratios']}"
              + ("" if row["met"] else f"  ✗ (targets: calls ≤ {100 * TARGET_SHARE:g} %, "
                 f"ratio ≥ {GROSS_RATIO})")
              + (f"  errors {off['errors']}/{on['errors']}"
                 if off["errors"] or on["errors"] else ""))
    print(f"calls %: what metrics add to one token request ({call_us:.2f} µs, timed in this "
          "process) as a share of the server CPU per request with metrics off (judged: "
          f"≤ {100 * TARGET_SHARE:g} %); ratio: on/off req/s, the median of the rounds' own "
          f"ratios in each phase, their geometric mean over the two phases (judged only "
          f"against a gross cost, < {GROSS_RATIO}: see --control for this machine's noise); "
          "total: over all rounds; the rounds' ratios by phase")
    print(f"tokens counted by the server with metrics on (both workers): {counted:,.0f}")

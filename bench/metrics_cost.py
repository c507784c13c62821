"""``--metrics-cost``: what the Prometheus metrics cost on ``/token``. The same site served
twice by ``authsvc serve``, once with metrics off (the default) and once on (``METRICS_TOKEN``
set: every request timed by route, every token counted, values in the multi-process files),
measured alternately kind by kind, several rounds each, the order swapped every round so that
neither side always runs first. Target: metrics on at most 5 % slower (req/s ratio ≥ 0.95).

On two cores shared with wrk, one round's req/s moves by more than the cost measured (10-30 %
between rounds of the same side), so the judged figure is the median over the rounds of each
round's own ratio (its two runs back to back), which one noisy run does not move; the totals
over all rounds are shown beside it. The same run also times the metrics calls a token request
makes (``metrics_call_us``), in this process, as a cross-check that does not depend on load."""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.kinds import KINDS
from bench.load import measure, traffic, write_scripts
from bench.procs import BenchError, log
from bench.servers import Server, get_refresh_token, preflight, send, start_servers, stop_servers
from bench.site import make_site

#: Metrics on may cost at most this share of the req/s with them off.
TARGET_RATIO = 0.95
#: Alternating rounds per kind (each round measures off and on once).
ROUNDS = 5
SIDES = ("off", "on")


def metrics_cost_mode(args: argparse.Namespace, tmp: Path, report: dict[str, Any],
                      src: Path) -> bool:
    """Both servers on one site, every kind in ``ROUNDS`` alternating rounds; the table of
    req/s and CPU per request with metrics off and on, and their ratios. Returns whether every
    kind met the target."""
    kinds = [KINDS[k] for k in args.kinds]
    site = make_site(tmp / "site", args.database, args.server_threads, src,
                     settings=args.settings)
    token = secrets.token_hex(24)
    on_site = dataclasses.replace(site, env={**site.env, "AUTHSVC_METRICS_TOKEN": token})
    off_server, on_server = (start_servers(["authsvc"], s, args, tmp)[0]
                             for s in (site, on_site))
    servers = {"off": off_server, "on": on_server}
    try:
        check_metrics(servers, site.ca, token)
        refresh_token = get_refresh_token(on_server, site.ca)
        scripts = write_scripts(tmp, refresh_token)
        for kind in kinds:
            for server in servers.values():
                preflight(server, site.ca, kind, refresh_token)
        rows = []
        for kind in kinds:
            runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
            for round_ in range(ROUNDS):
                for side in SIDES if round_ % 2 == 0 else tuple(reversed(SIDES)):
                    log(f"{kind.name}: metrics {side}, round {round_ + 1} of {ROUNDS}")
                    runs[side].append(measure(servers[side], traffic(kind, scripts), args))
            rows.append(summary(kind.name, runs))
        counted = check_metrics(servers, site.ca, token)
    finally:
        stop_servers(list(servers.values()))
    call_us = metrics_call_us()
    print_cost(args, rows, counted, call_us)
    report["metrics_cost"] = {"rows": rows, "tokens_counted": counted,
                              "metrics_call_us": call_us}
    return all(row["met"] for row in rows)


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


def check_metrics(servers: dict[str, Server], ca: Path, token: str) -> float:
    """Metrics are really off on one (``/metrics`` 404) and on on the other; returns how many
    tokens the one with metrics on counted (every worker's, added up)."""
    status, _ = send(servers["off"], ca, "GET", "/metrics",
                     headers={"Authorization": f"Bearer {token}"})
    if status != 404:
        raise BenchError(f"metrics off: /metrics answered {status}, not 404")
    status, body = send(servers["on"], ca, "GET", "/metrics",
                        headers={"Authorization": f"Bearer {token}"})
    if status != 200:
        raise BenchError(f"metrics on: /metrics answered {status}: {body[:300]!r}")
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
               if line.startswith("authsvc_tokens_issued_total{"))


def summary(kind: str, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One kind's row: total req/s and CPU per request of each side over its rounds (all
    rounds count, so a noisy one weighs no more than its share), the ratios, the target."""
    row: dict[str, Any] = {"kind": kind, "rounds": ROUNDS}
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
    pairs = [(a.get("rps") or 0, b.get("rps") or 0)
             for a, b in zip(runs["off"], runs["on"], strict=True)]
    row["round_ratios"] = [round(b / a, 3) for a, b in pairs if a]
    row["rps_ratio"] = (statistics.median(row["round_ratios"]) if row["round_ratios"]
                        else None)
    row["met"] = (row["rps_ratio"] is not None and row["rps_ratio"] >= TARGET_RATIO
                  and not off["errors"] and not on["errors"])
    return row


def print_cost(args: argparse.Namespace, rows: list[dict[str, Any]], counted: float,
               call_us: float) -> None:
    print(f"\n== metrics cost on /token: metrics off vs on, {ROUNDS} alternating rounds per "
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
        share = (f"{100 * call_us / (1000 * off['cpu_ms_per_req']):.1f}"
                 if off["cpu_ms_per_req"] else "-")
        print(f"{row['kind']:<9}{off['rps']:>11,.0f}{on['rps']:>11,.0f}{ratio:>8}{total:>7}"
              f"{off['cpu_ms_per_req'] or 0:>12.3f}{on['cpu_ms_per_req'] or 0:>11.3f}{cpu:>11}"
              f"{share:>9}{off['p99_ms']:>8.1f}/{on['p99_ms']:<7.1f}  {row['round_ratios']}"
              + ("" if row["met"] else f"  ✗ (target ratio ≥ {TARGET_RATIO})")
              + (f"  errors {off['errors']}/{on['errors']}"
                 if off["errors"] or on["errors"] else ""))
    print(f"ratio: on/off req/s, the median of the rounds' own ratios (judged); total: over "
          f"all rounds; calls %: the metrics calls of one token request ({call_us:.2f} µs, "
          "timed in this process) as a share of the server CPU per request with metrics off")
    print(f"tokens counted by the server with metrics on (both workers): {counted:,.0f}")

"""What the benchmark reports: the ratios and targets of each authsvc run, the tables it
prints, and the JSON results (bench/results/)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from bench.checkout import describe
from bench.kinds import Kind
from bench.servers import Server
from bench.site import BCRYPT_ROUNDS, REPO

RESULTS_DIR = REPO / "bench" / "results"
P99_TARGET_MS = 15.0
#: The growth site's p50 latency, at most this many times the 10-user site's.
GROWTH_TARGET = 1.2


def fmt(value: float | None, digits: int = 1) -> str:
    """``value`` with thousands separators and ``digits`` decimals; ``-`` for None."""
    return "-" if value is None else f"{value:,.{digits}f}"


def judge(kind: Kind, run: dict[str, Any], references: dict[str, dict[str, Any]]) -> None:
    """Add ratio (to the ceiling), target and met? to an authsvc run, and its ratios to the
    Python baselines (shown, not judged)."""
    ceiling = references.get("ceiling")
    ratio = run["rps"] / ceiling["rps"] if ceiling and ceiling["rps"] else None
    run["ratio"] = ratio
    # The same comparison in server CPU per request: steadier when the machine is busy.
    run["cpu_ratio"] = (ceiling["cpu_ms_per_req"] / run["cpu_ms_per_req"]
                        if ceiling and ceiling["cpu_ms_per_req"] and run["cpu_ms_per_req"]
                        else None)
    reference = references.get(kind.reference)
    if reference and reference["rps"]:
        run["ratio_to_reference"] = run["rps"] / reference["rps"]
    # Against the signing baseline behind gunicorn gthread: what moving to authsvc from a
    # classic Python token service behind gunicorn gains.
    if "gthread" in references and references["gthread"]["rps"]:
        run["ratio_to_gthread"] = run["rps"] / references["gthread"]["rps"]
    run["target"] = (f">={kind.min_ceiling:g}x ceiling, p99<={P99_TARGET_MS:g}ms, "
                     "0 errors")
    misses = []
    if ratio is None or ratio < kind.min_ceiling:
        misses.append("req/s")
    if run["p99_ms"] is None or run["p99_ms"] > P99_TARGET_MS:
        misses.append("p99")
    if run["errors"]:
        misses.append("errors")
    run["met"] = not misses
    run["missed"] = misses


def print_table(runs: list[dict[str, Any]]) -> None:
    """The normal mode's table: one row per run, authsvc's with its ratios and targets."""
    header = (f"{'kind':<8} {'pass':>4} {'server':<16} {'req/s':>9} {'p50 ms':>8} "
              f"{'p99 ms':>8} {'errors':>6} {'cpu ms/req':>10} {'other%':>6} {'top wkr%':>8} "
              f"{'x ceil':>7} "
              f"{'cpu x':>6} {'x python':>8} {'x gthread':>9}  "
              f"{'target':<40} met?")
    print(header)
    print("-" * len(header))
    for run in runs:
        ratio, cpu_ratio, python, gthread = (
            f"{run[key]:.2f}x" if run.get(key) is not None else ""
            for key in ("ratio", "cpu_ratio", "ratio_to_reference", "ratio_to_gthread"))
        met = ("" if "met" not in run else "yes" if run["met"] else
               "NO (" + ", ".join(run["missed"]) + ")")
        print(f"{run['kind']:<8} {run.get('pass', ''):>4} {run['server']:<16} "
              f"{fmt(run['rps']):>9} "
              f"{fmt(run['p50_ms'], 2):>8} {fmt(run['p99_ms'], 2):>8} {run['errors']:>6} "
              f"{fmt(run['cpu_ms_per_req'], 2):>10} {fmt(run['other_cpu_pct'], 0):>6} "
              f"{fmt(run['top_worker_pct'], 0):>8} "
              f"{ratio:>7} {cpu_ratio:>6} {python:>8} {gthread:>9}  "
              f"{run.get('target', ''):<40} {met}")


#: Each authsvc worker's RSS at most this many times the signing baseline's (issue 16).
RSS_TARGET = 1.2


def rss_ratios(servers: list[Server]) -> dict[str, float | None]:
    """authsvc's largest worker RSS over the signing baseline's largest, at rest and at the
    peak under load."""
    by_role = {s.role: s for s in servers}
    ours, theirs = by_role.get("authsvc"), by_role.get("baseline")
    result: dict[str, float | None] = {}
    for key in ("rss_rest", "rss_peak"):
        a = max(getattr(ours, key).values(), default=None) if ours else None
        b = max(getattr(theirs, key).values(), default=None) if theirs else None
        result[key.removeprefix("rss_")] = a / b if a and b else None
    return result


def print_rss(servers: list[Server]) -> None:
    """Each worker's RSS at rest, at its peak under load and after, and its CPU seconds;
    authsvc's against the signing baseline's."""
    print(f"\nper worker{'':<17}{'RSS MiB: at rest':>16} {'peak under load':>16} "
          f"{'after load':>11} {'CPU s in runs':>14}")
    for server in servers:
        for pid in sorted(set(server.rss_rest) | set(server.rss_peak) | set(server.rss_after)):
            print(f"  {server.label:<15} pid {pid:<7} {fmt(server.rss_rest.get(pid)):>13} "
                  f"{fmt(server.rss_peak.get(pid)):>16} {fmt(server.rss_after.get(pid)):>11} "
                  f"{fmt(server.cpu.get(pid)):>14}")
    ratios = rss_ratios(servers)
    if None not in ratios.values():
        met = all(r is not None and r <= RSS_TARGET for r in ratios.values())
        print(f"authsvc worker RSS / baseline's: {ratios['rest']:.2f}x at rest, "
              f"{ratios['peak']:.2f}x at the peak under load (target <= {RSS_TARGET:g}x: "
              f"{'met' if met else 'NOT met'})")


def print_profile(kind: str, summary: dict[str, Any]) -> None:
    """Where the time of ``kind`` goes (``profiling.profile``'s summary)."""
    wall, gil = summary["wall"], summary["gil"]
    print(f"\nwhere the time goes, authsvc workers, {kind} (py-spy {summary['seconds']} s at "
          f"200 Hz: wall = {wall['samples']} samples of busy threads, GIL = {gil['samples']} "
          "samples of the thread holding the GIL)")
    print(f"  {'layer':<38} {'wall %':>7} {'GIL %':>7}")
    gil_layers = dict(gil["layers"])
    for layer, pct in wall["layers"]:
        print(f"  {layer:<38} {pct:>7.1f} {gil_layers.get(layer, 0.0):>7.1f}")
    print(f"  {'authsvc function (time under it)':<60} {'wall %':>7}")
    for func, pct in wall["authsvc"]:
        print(f"  {func:<60} {pct:>7.1f}")
    print(f"  {'innermost Python function, GIL held':<60} {'GIL %':>7}")
    for func, pct in gil["self"]:
        print(f"  {func:<60} {pct:>7.1f}")


def rss_json(servers: list[Server]) -> dict[str, Any]:
    """The workers' RSS and CPU seconds by server label and pid, for the JSON results."""
    return {s.label: {str(pid): {"rest": s.rss_rest.get(pid), "peak": s.rss_peak.get(pid),
                                 "after": s.rss_after.get(pid), "cpu_s": s.cpu.get(pid)}
                      for pid in sorted(set(s.rss_rest) | set(s.rss_peak))} for s in servers}



def print_normal(code: dict[str, Any], args: argparse.Namespace, runs: list[dict[str, Any]],
                 verdicts: list[dict[str, Any]], servers: list[Server],
                 profiles: dict[str, Any]) -> None:
    """The normal mode's report: what ran, the table of runs, the verdicts, the workers'
    RSS, the profiles."""
    print(f"\n== authsvc token benchmark, {describe(code)}: granian, "
          f"{args.workers} workers x "
          f"{args.server_threads} threads, wrk -t{args.threads} -c{args.connections} "
          f"-d{args.duration}s, {args.passes} pass(es), {args.database}, bcrypt cost "
          f"{BCRYPT_ROUNDS}" + "".join(f", {key}={value}" for key, value in args.settings.items()))
    print_table(runs)
    print(f"\n{'kind':<8} {'passes':>6} {'authsvc req/s':>13} {'x ceil':>7} {'cpu x':>6} "
          f"{'p99 ms':>7} {'worst p99':>9} {'errors':>6}  {'target':<40} met?  (medians)")
    for v in verdicts:
        print(f"{v['kind']:<8} {v['passes']:>6} {fmt(v['rps']):>13} {fmt(v['ratio'], 2):>7} "
              f"{fmt(v['cpu_ratio'], 2):>6} {fmt(v['p99_ms'], 2):>7} "
              f"{fmt(v['worst_p99_ms'], 2):>9} {v['errors']:>6}  {v['target']:<40} "
              f"{'yes' if v['met'] else 'NO'}")
    print("\nx ceil: req/s as a fraction of the ceiling's (the same server and settings, a "
          "fixed token answer, no access line); cpu x: the same in server CPU per request; "
          "x python: of the Python baseline that signs per request (bcrypt: and checks the "
          "password); x gthread: of that baseline behind gunicorn gthread")
    print_rss(servers)
    for name, summary in profiles.items():
        print_profile(name, summary)


def print_growth(database: str, code: dict[str, Any], seeded: dict[str, Any],
                 args: argparse.Namespace,
                 pairs: list[tuple[dict[str, Any], dict[str, Any]]],
                 servers: dict[str, Server]) -> dict[str, Any]:
    """The growth mode's report for one database: what ran, the table of (10-user, growth)
    pairs, the workers' RSS; returns that RSS for the JSON results."""
    print(f"\n== growth ({database}), {describe(code)}: a 10-user site, "
          "and the same plus "
          f"{seeded.get('users', 0):,} users, {seeded.get('namespaces', 0):,} namespaces, "
          f"{seeded.get('repositories', 0):,} repositories, {seeded.get('grants', 0):,} "
          f"grants, {seeded.get('refresh_tokens', 0):,} refresh tokens (seeded in "
          f"{seeded.get('seconds', '?')} s, database {seeded.get('database_mib', '?'):,} MiB); "
          "measured alternately; granian, "
          f"{args.workers} workers x {args.server_threads} threads, -d{args.duration}s")
    print_growth_table(pairs)
    rss = {case: rss_json([server])["authsvc"] for case, server in servers.items()}
    print("\nper authsvc worker: RSS MiB at rest / peak under load / after load, "
          "CPU s in runs")
    for case, workers in rss.items():
        values = "; ".join(f"{fmt(v['rest'])} / {fmt(v['peak'])} / {fmt(v['after'])}, "
                           f"{fmt(v['cpu_s'])} s" for v in workers.values())
        print(f"  {case:<9} {values}")
    return rss


def print_growth_table(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """The growth mode's table: each 10-user run, then its growth run with the ratios."""
    header = (f"{'kind':<8} {'conns':>5} {'case':<9} {'req/s':>9} {'p50 ms':>8} "
              f"{'p99 ms':>8} {'errors':>6} {'cpu ms/req':>10} {'other%':>6} {'top wkr%':>8} "
              f"{'p50 x':>6} {'p99 x':>6} {'req/s x':>7} {'cpu x':>6}  target"
              "            met?")
    print(header)
    print("-" * len(header))
    for small_run, big_run in pairs:
        for run in (small_run, big_run):
            extra = ""
            if run is big_run:
                extra = (f"{fmt(run['p50_ratio'], 2):>6} {fmt(run['p99_ratio'], 2):>6} "
                         f"{fmt(run['rps_ratio'], 2):>7} {fmt(run['cpu_ratio'], 2):>6}  "
                         f"p50<={GROWTH_TARGET:g}x, 0 err  "
                         + (f"n/a: {run['not_judged']}" if run["met"] is None
                            else "yes" if run["met"] else "NO"))
            print(f"{run['kind']:<8} {run['connections']:>5} {run['case']:<9} "
                  f"{fmt(run['rps']):>9} {fmt(run['p50_ms'], 2):>8} "
                  f"{fmt(run['p99_ms'], 2):>8} {run['errors']:>6} "
                  f"{fmt(run['cpu_ms_per_req'], 2):>10} {fmt(run['other_cpu_pct'], 0):>6} "
                  f"{fmt(run['top_worker_pct'], 0):>8} {extra}")


def write_results(report: dict[str, Any], mode: str) -> None:
    """Write ``report`` to bench/results/latest.json and a timestamped copy, and say where."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    text = json.dumps(report, indent=2, default=str)
    (RESULTS_DIR / "latest.json").write_text(text)
    (RESULTS_DIR / f"{mode}-{stamp}.json").write_text(text)
    print(f"{mode} run took {report['seconds']:.0f} s; results in "
          f"{(RESULTS_DIR / 'latest.json').relative_to(REPO)}")


def print_search(database: str, code: dict[str, Any], seeded: dict[str, Any],
                 args: argparse.Namespace, runs: list[dict[str, Any]],
                 plans: dict[str, Any] | None, profiles: dict[str, Any]) -> None:
    """The search mode's report for one database: what ran, the table (with the time the
    database alone takes for each kind's SQL), the plans, the profiles."""
    print(f"\n== search ({database}), {describe(code)}: {seeded.get('repositories', 0):,} "
          f"repositories in {seeded.get('namespaces', 0):,} namespaces, "
          f"{seeded.get('tags', 0):,} tags, {seeded.get('total_grants', 0):,} grants "
          f"({seeded.get('alice_grants', 0)} held by alice), seeded in "
          f"{seeded.get('seconds', '?')} s; database {fmt(seeded.get('database_mib'))} MiB "
          f"(repositories and their indexes {fmt(seeded.get('repositories_mib'))} MiB); "
          f"granian, {args.workers} workers x {args.server_threads} threads, "
          f"-d{args.duration}s")
    kinds = (plans or {}).get("kinds", {})
    header = (f"{'kind':<14} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'errors':>6} {'matches':>8} {'cpu ms/req':>10} {'pg cpu':>6} {'db ms':>7} "
              f"{'other%':>6}  target            met?")
    print(header)
    print("-" * len(header))
    for run in runs:
        db_ms = kinds.get(run["kind"], {}).get("db_ms")
        print(f"{run['kind']:<14} {run['connections']:>5} {fmt(run['rps']):>8} "
              f"{fmt(run['p50_ms'], 2):>8} {fmt(run['p99_ms'], 2):>8} {run['errors']:>6} "
              f"{fmt(run['matches'], 0):>8} {fmt(run['cpu_ms_per_req'], 2):>10} "
              f"{fmt(run.get('db_cpu_ms_per_req'), 2):>6} "
              f"{fmt(db_ms, 2):>7} {fmt(run['other_cpu_pct'], 0):>6}  "
              f"p99<={P99_TARGET_MS:g}ms, 0 err  {'yes' if run['met'] else 'NO'}")
    print("\ncpu ms/req: authsvc's workers; pg cpu: PostgreSQL's processes, ms per request; "
          "db ms: the median time of the kind's SQL (its queries in turn, each statement as "
          "Repositories.search and the tag counts send it) run alone, outside authsvc; "
          "other%: the rest of the machine, in % of a core (noise)")
    for name, kind in kinds.items():
        print(f"\n  {name}: {kind['db_ms']:.2f} ms; e.g. q={kind['example']!r}")
        for statement in kind["statements"]:
            print(f"    {statement['ms']:>7.2f} ms  {' '.join(statement['sql'].split())[:110]}")
            for line in statement["plan"]:
                print(f"               {line[:130]}")
    for name, summary in profiles.items():
        print_profile(name, summary)

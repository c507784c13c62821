"""``python -m bench`` (``bench/run``): the options, the run, and stopping everything it
started, whatever happens."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from authsvc.config import DEFAULTS
from bench import procs
from bench.checkout import authsvc_under_test, describe, snapshot
from bench.kinds import KINDS
from bench.metrics_cost import metrics_cost_mode
from bench.modes import growth_mode, normal_mode
from bench.procs import BenchError, log
from bench.push import push_mode
from bench.report import RESULTS_DIR, write_results
from bench.search import search_mode
from bench.search_kinds import SEARCH_KINDS
from bench.site import (
    BCRYPT_ROUNDS,
    CREATED_DATABASES,
    PG_SMALL_URL,
    PG_URL,
    REPO,
    drop_databases,
)


def options() -> argparse.ArgumentParser:
    """The options of ``bench/run`` (``--help``)."""
    parser = argparse.ArgumentParser(
        prog="bench/run", description="Benchmark authsvc's token endpoint against same-run "
        "baselines on loopback (HTTPS, the configured server, wrk).")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run "
                        "(default 10; 1 with --quick)")
    parser.add_argument("--passes", type=int, default=None, help="interleaved passes over "
                        "the kinds, the ceiling and authsvc measured in each; judged on the "
                        "median (default 3; 1 with --quick)")
    parser.add_argument("--warmup", type=int, default=None, help="seconds of discarded load "
                        "before each run (default duration/5, at least 1)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections "
                        "(default 16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--workers", type=int, default=DEFAULTS["WORKERS"],
                        help="server worker processes (default: authsvc's WORKERS default, "
                        f"{DEFAULTS['WORKERS']})")
    parser.add_argument("--server-threads", type=int, default=DEFAULTS["THREADS"],
                        help="threads per worker (default: authsvc's THREADS default, "
                        f"{DEFAULTS['THREADS']})")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="KEY=VALUE", help="an authsvc setting for this run, e.g. "
                        "TOKEN_CACHE_SECONDS=0 to see what the token cache gives (repeatable)")
    parser.add_argument("--kinds", default=None,
                        help=f"comma list of {', '.join(KINDS)} (default all); with --search "
                        f"of {', '.join(SEARCH_KINDS)} (default all)")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"),
                        default="sqlite", help="authsvc's database (PostgreSQL: "
                        f"{PG_URL.rsplit('@', 1)[-1]}, and {PG_SMALL_URL.rsplit('/', 1)[-1]} "
                        "in growth mode; made empty, dropped at the end; both: only with "
                        "--growth and --search)")
    parser.add_argument("--growth", action="store_true", help="authsvc alone on a 10-user "
                        "site and on one with 100k users / 10k namespaces / 1M grants "
                        "(x --scale) more, measured alternately")
    parser.add_argument("--search", action="store_true", help="repository search (the "
                        "API's and Docker's /v1/search) on a site with 100k repositories "
                        "(x --scale), 10k namespaces, 250k tags; p99 <= 50 ms")
    parser.add_argument("--metrics-cost", action="store_true", help="what Prometheus metrics "
                        "cost on /token: authsvc with metrics off and on, alternately")
    parser.add_argument("--push", action="store_true", help="a docker push of a 50 MiB image "
                        "through a registry with authsvc and through one without auth, real "
                        "Docker engine, 5 each (root; docker.io and docker-registry)")
    parser.add_argument("--control", action="store_true", help="with --metrics-cost: "
                        "metrics off on both sides, to see the comparison's own noise")
    parser.add_argument("--scale", type=float, default=1.0, help="growth and search data "
                        "scale (default 1.0; 0.1 = 10k users, 1k namespaces, 100k grants; "
                        "search: 10k repositories)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 s per run, 1 s "
                        "warm-up, scale 0.01 in growth mode")
    parser.add_argument("--profile", action="store_true", help="py-spy the authsvc workers "
                        "under each kind of load and print where the time goes")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="first wait up to SECONDS for the machine to be idle (<30%% of a "
                        "core busy)")
    parser.add_argument("--ref", default=None, metavar="COMMIT",
                        help="measure authsvc as committed at COMMIT (git archive into the "
                        "temporary folder) instead of this working tree")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (and "
                        "the PostgreSQL database)")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options, checked, with the defaults ``--quick`` changes, ``--set`` as a mapping,
    the kinds as a list and ``databases``; exits with a usage error on bad ones."""
    parser = options()
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 1
        args.warmup = 1 if args.warmup is None else args.warmup
        if args.scale == 1.0:
            args.scale = 0.01
    if args.warmup is None:
        args.warmup = max(1, args.duration // 5)
    if args.passes is None:
        args.passes = 1 if args.quick else 3
    settings = [item.partition("=") for item in args.settings]
    if any(not key or not sep for key, sep, _ in settings):
        parser.error("--set takes KEY=VALUE, e.g. --set TOKEN_CACHE_SECONDS=0")
    args.settings = {key.removeprefix("AUTHSVC_"): value for key, _, value in settings}
    if args.growth + args.search + args.metrics_cost + args.push > 1:
        parser.error("one of --growth, --search, --metrics-cost and --push")
    known = SEARCH_KINDS if args.search else KINDS
    args.kinds = ([k.strip() for k in args.kinds.split(",") if k.strip()]
                  if args.kinds is not None else list(known))
    unknown = [k for k in args.kinds if k not in known]
    if unknown or not args.kinds:
        parser.error(f"unknown kind {unknown}: use {', '.join(known)}")
    if args.control and not args.metrics_cost:
        parser.error("--control only with --metrics-cost")
    if args.database == "both" and not (args.growth or args.search):
        parser.error("--database both only with --growth or --search")
    args.databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    if min(args.duration, args.connections, args.threads, args.workers,
           args.server_threads, args.passes) < 1 or args.scale <= 0:
        parser.error("durations, counts and --scale must be positive")
    return args


def wait_quiet(limit: float, threshold: float = 30.0) -> None:
    """Wait (at most ``limit`` seconds) until the machine uses under ``threshold`` % of one
    core over 2 s: other work on it makes every number noisy."""
    deadline = time.monotonic() + limit
    while True:
        before = procs.machine_busy_seconds()
        time.sleep(2)
        busy = 100 * (procs.machine_busy_seconds() - before) / 2
        if busy < threshold:
            log(f"machine quiet ({busy:.0f}% of a core busy)")
            return
        if time.monotonic() > deadline:
            log(f"machine still busy ({busy:.0f}% of a core) after {limit:.0f} s; going on")
            return


def _interrupt(signum: int, _frame: object) -> None:
    """Stop the run as Ctrl-C does (SIGTERM, SIGHUP too)."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status: 0 when it ran (targets met or not), 1 on
    an error, 130 when interrupted. The JSON results are written in every case."""
    args = parse_args(argv)
    signal.signal(signal.SIGINT, _interrupt)  # also when started with SIGINT ignored (&)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    RESULTS_DIR.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="authsvc-bench-"))
    started = time.monotonic()
    mode = ("growth" if args.growth else "search" if args.search
            else "metrics-cost" if args.metrics_cost else "push" if args.push
            else "quick" if args.quick else "normal")
    report: dict[str, Any] = {
        "mode": mode, "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": {k: v for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg()},
        "bcrypt_rounds": BCRYPT_ROUNDS}
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    load1 = os.getloadavg()[0]
    log(f"{mode} run in {tmp}; load average {load1:.2f}"
        + (" (the machine is busy: numbers will be noisy)" if load1 > 0.7 else ""))
    status = 1
    try:
        met = run(args, tmp, report)
        status = 0
        print(f"\ntargets {'all met' if met else 'NOT all met'}")
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        report["error"] = str(e)
    except KeyboardInterrupt:
        print("bench: interrupted; stopping everything", file=sys.stderr)
        report["error"] = "interrupted"
        status = 130
    except Exception as e:  # report it, stop everything, keep the JSON
        import traceback

        traceback.print_exc()
        report["error"] = f"{type(e).__name__}: {e}"
    finally:
        clean_up(tmp, args.keep)
        report["seconds"] = round(time.monotonic() - started, 1)
    write_results(report, mode)
    return status


def run(args: argparse.Namespace, tmp: Path, report: dict[str, Any]) -> bool:
    """Measure the authsvc of ``--ref`` or of this checkout in the mode asked for; returns
    whether every target was met."""
    src = snapshot(args.ref, tmp) if args.ref else REPO
    report["authsvc"] = code = authsvc_under_test(args, src)
    log(f"measuring {describe(code)}")
    if args.growth:
        return growth_mode(args, tmp, report, src)
    if args.search:
        return search_mode(args, tmp, report, src)
    if args.metrics_cost:
        return metrics_cost_mode(args, tmp, report, src)
    if args.push:
        return push_mode(args, tmp, report, src)
    return normal_mode(args, tmp, report, src)


def clean_up(tmp: Path, keep: bool) -> None:
    """Stop everything still running; drop the databases and remove ``tmp`` unless ``keep``."""
    procs.stop_all()
    if not keep:
        drop_databases()
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        names = ", ".join(url.rsplit("/", 1)[-1] for url in CREATED_DATABASES)
        print(f"kept {tmp}" + (f" and PostgreSQL {names}" if names else ""))

"""Load: wrk runs against a server (its Lua scripts, command line and output), and one measured
run with the server's CPU time, its workers' RSS peaks and how busy the rest of the machine
was meanwhile."""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procs
from bench.kinds import ANON_PATH, BASIC_HEADER, BASIC_PATH, BURST_PATHS, Kind, refresh_body
from bench.procs import BenchError, executable
from bench.servers import Server
from bench.site import REPO

BCRYPT_MIN_SECONDS = 10


def write_scripts(tmp: Path, refresh_token: str) -> dict[str, Path]:
    """wrk's Lua scripts for the kinds that need one (``refresh``: the POST; ``burst``: the
    scopes in turn), written to ``tmp``; returns their paths by kind."""
    refresh = tmp / "refresh.lua"
    refresh.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = "{refresh_body(refresh_token)}"\n'
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n')
    burst = tmp / "burst.lua"
    paths = ",\n".join(f'  "{p}"' for p in BURST_PATHS)
    burst.write_text(
        f"local paths = {{\n{paths}\n}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\n'
        "end\n")
    return {"refresh": refresh, "burst": burst}


@dataclass(frozen=True)
class Traffic:
    """What one wrk run sends: ``name`` (the kind in the results), the path, extra headers,
    and the Lua script that makes each request (None: the path every time)."""

    name: str
    path: str
    headers: tuple[str, ...] = ()
    script: Path | None = None


def traffic(kind: Kind, scripts: dict[str, Path]) -> Traffic:
    """What wrk sends for the token ``kind`` (``scripts``: ``write_scripts``'s)."""
    return Traffic(kind.name, {"anon": ANON_PATH, "basic": BASIC_PATH}.get(kind.name, "/token"),
                   (f"Authorization: {BASIC_HEADER}",) if kind.basic_auth else (),
                   scripts.get(kind.name))


def wrk_argv(server: Server, load: Traffic, seconds: int, connections: int, threads: int,
             close: bool = False) -> list[str]:
    """wrk's command line; ``close`` sends ``Connection: close`` (a new connection, and so
    any worker, for every request)."""
    argv = [executable("wrk"), "--latency", "-t", str(min(threads, connections)),
            "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s"]
    if close:
        argv += ["-H", "Connection: close"]
    for header in load.headers:
        argv += ["-H", header]
    if load.script is not None:
        argv += ["-s", str(load.script)]
    return [*argv, server.url + load.path]


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise BenchError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """req/s, latency percentiles, requests, seconds and errors from wrk's ``--latency``
    output; raises BenchError without a req/s line."""
    result: dict[str, Any] = {"non2xx": 0, "connect": 0, "read": 0, "write": 0, "timeout": 0}
    for label, key in (("50%", "p50_ms"), ("75%", "p75_ms"), ("90%", "p90_ms"),
                       ("99%", "p99_ms")):
        match = re.search(rf"^\s+{re.escape(label)}\s+(\S+)", output, re.M)
        result[key] = _ms(match.group(1)) if match else None
    match = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", output, re.M)
    if match:
        result["avg_ms"], result["max_ms"] = _ms(match.group(1)), _ms(match.group(3))
    match = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    if match:
        result["requests"] = int(match.group(1))
        result["seconds"] = _ms(match.group(2) + match.group(3)) / 1000
    match = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if not match:
        raise BenchError(f"cannot read wrk's output:\n{output[-2000:]}")
    result["rps"] = float(match.group(1))
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      output)
    if match:
        for key, value in zip(("connect", "read", "write", "timeout"), match.groups(),
                              strict=True):
            result[key] = int(value)
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if match:
        result["non2xx"] = int(match.group(1))
    result["errors"] = sum(result[k] for k in ("non2xx", "connect", "read", "write", "timeout"))
    return result


def run_wrk(argv: list[str], seconds: int) -> str:
    """Run wrk (``seconds`` long) and return its output; raises BenchError when it fails."""
    process = procs.start(argv, os.environ, REPO)
    try:
        stdout, _ = process.communicate(timeout=seconds + 60)
    finally:
        procs.stop(process)
    out = stdout.decode(errors="replace")
    if process.returncode != 0:
        raise BenchError(f"wrk failed ({process.returncode}): {out[-2000:]}")
    return out


def warm_up(server: Server, load: Traffic, seconds: int, connections: int,
            threads: int) -> None:
    """Load thrown away before a measured run. Warm every worker, not only those the
    kept-alive connections land on: first with a new connection per request, then as
    measured."""
    spread = max(1, seconds // 2)
    run_wrk(wrk_argv(server, load, spread, connections, threads, close=True), spread)
    if seconds > spread:
        run_wrk(wrk_argv(server, load, seconds - spread, connections, threads),
                seconds - spread)


def measure(server: Server, load: Traffic, args: argparse.Namespace,
            connections: int | None = None, threads: int | None = None,
            warmup: bool = True) -> dict[str, Any]:
    """One wrk run (after a warm-up run that is thrown away), with the server's CPU time and its
    workers' peak RSS, and how busy the rest of the machine was meanwhile."""
    connections = connections or args.connections
    threads = threads or args.threads
    seconds = args.duration
    if server.role == "bcrypt":
        # Nothing to warm up, but its first answers take a whole latency (about a second), so
        # a short run would count far too few: run at least BCRYPT_MIN_SECONDS.
        seconds = max(seconds, 3 if args.quick else BCRYPT_MIN_SECONDS)
    elif warmup and args.warmup:
        warm_up(server, load, args.warmup, connections, threads)
    argv = wrk_argv(server, load, seconds, connections, threads)
    pids = server.pids()
    per_worker0 = {pid: procs.cpu_seconds([pid]) for pid in server.workers()}
    busy0, cpu0, wrk0 = (procs.machine_busy_seconds(), procs.cpu_seconds(pids),
                         procs.children_cpu_seconds())
    with procs.RssSampler(server.workers()) as sampler:
        output = run_wrk(argv, seconds)
    busy1, cpu1, wrk1 = (procs.machine_busy_seconds(), procs.cpu_seconds(pids),
                         procs.children_cpu_seconds())
    worker_cpu = {pid: round(procs.cpu_seconds([pid]) - before, 2)
                  for pid, before in per_worker0.items()}
    for pid, used in worker_cpu.items():
        server.cpu[pid] = server.cpu.get(pid, 0.0) + used
    for pid, peak in sampler.peak.items():
        server.rss_peak[pid] = max(server.rss_peak.get(pid, 0.0), peak)
    result = parse_wrk(output)
    elapsed = result.get("seconds") or seconds
    server_cpu = cpu1 - cpu0
    result.update({
        "kind": load.name, "server": server.label, "connections": connections,
        "server_cpu_s": round(server_cpu, 2), "wrk_cpu_s": round(wrk1 - wrk0, 2),
        "worker_cpu_s": {str(pid): used for pid, used in worker_cpu.items()},
        # Share of the workers' CPU the busiest one used: 100 = one worker served everything.
        "top_worker_pct": round(100 * max(worker_cpu.values()) / sum(worker_cpu.values()))
        if worker_cpu and sum(worker_cpu.values()) > 0 else None,
        "cpu_ms_per_req": round(1000 * server_cpu / result["requests"], 3)
        if result.get("requests") else None,
        # CPU the rest of the machine used during the run, in % of one core: noise.
        "other_cpu_pct": round(100 * max(0.0, (busy1 - busy0) - server_cpu - (wrk1 - wrk0))
                               / elapsed, 0),
        "wrk_output": output,
    })
    return result

"""authsvc token benchmark: authsvc as production runs it, against same-run baselines, with wrk.

Every server runs on 127.0.0.1 over HTTPS with the same certificates, workers, threads and
keep-alive: ``authsvc serve`` itself (granian), ``bench/baseline_app.py --mode sign`` (a minimal
Flask app signing the same ES256 token per request) and ``--mode bcrypt`` (the same after a
bcrypt check on every request, at authsvc's cost), both behind the very server ``authsvc serve``
runs, and the signing baseline once more behind gunicorn's gthread workers (the classic Python
deployment: the reference point the issue's figures come from). Four kinds of request, each
against the baselines first and then authsvc, after a warm-up: anonymous pull of a public
repository, Basic-auth push+pull on the user's own repository, the OAuth2 refresh grant, and a
``docker push`` burst (the same Basic credentials, 10 scopes in a row). ``--growth`` measures
authsvc on a 10-user site and, alternately, on one with 100k users / 10k namespaces / 1M grants
more.

Run through ``bench/run`` (see README, "Benchmark"); results go to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from authsvc.config import DEFAULTS
from authsvc.pki.certs import CertPaths
from bench import procs
from bench.seed import BURST_REPOS, PASSWORD, PRIVATE_REPO, PUBLIC_REPO, USER

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "bench" / "results"
#: Where the authsvc under test (and the bench package the servers use) is imported from:
#: this checkout, or a ``git archive`` of ``--ref`` in the temporary folder.
SRC = REPO
HOST = "127.0.0.1"  # loopback only, never anything else
SERVICE = "registry"
CLIENT_ID = "docker"
BCRYPT_ROUNDS = 10
P99_TARGET_MS = 50.0
GROWTH_TARGET = 1.2
#: Busiest-worker shares further apart than this make two runs' latencies incomparable.
IMBALANCE_POINTS = 25
#: Other processes' CPU (% of one core) further apart than this: the same.
NOISE_POINTS = 50
#: PostgreSQL databases made by this run; dropped at the end unless --keep.
CREATED_DATABASES: list[str] = []
BCRYPT_MIN_SECONDS = 10
PG_URL = os.environ.get("BENCH_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/authsvc_bench")
PG_SMALL_URL = PG_URL + "_small"  # growth mode's 10-user site


@dataclass(frozen=True)
class Kind:
    name: str
    title: str
    #: The same-run server the req/s target compares against: "baseline" or "bcrypt".
    reference: str
    min_ratio: float
    basic_auth: bool
    method: str = "GET"


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("anon", "anonymous pull of a public repository", "baseline", 1.5, False),
    Kind("basic", "Basic auth, push+pull on own repository", "bcrypt", 50.0, True),
    Kind("refresh", "OAuth2 refresh grant (POST /token)", "baseline", 1.0, False, "POST"),
    Kind("burst", "docker push burst: same Basic credentials, 10 scopes", "bcrypt", 50.0, True),
)}


def scope_query(*scopes: str) -> str:
    return "/token?" + urllib.parse.urlencode([("service", SERVICE)] + [("scope", s)
                                                                        for s in scopes])


ANON_PATH = scope_query(f"repository:{PUBLIC_REPO}:pull")
BASIC_PATH = scope_query(f"repository:{PRIVATE_REPO}:pull,push")
BURST_PATHS = [scope_query(f"repository:{repo}:pull,push") for repo in BURST_REPOS]
BASIC_HEADER = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def refresh_body(refresh_token: str) -> str:
    return urllib.parse.urlencode({
        "grant_type": "refresh_token", "refresh_token": refresh_token, "service": SERVICE,
        "client_id": CLIENT_ID, "scope": f"repository:{PRIVATE_REPO}:pull,push"})


class BenchError(Exception):
    pass


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def python() -> str:
    return sys.executable


def executable(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise BenchError(f"{name} is not installed (bench/run installs what it needs)")
    return found


def run_checked(argv: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None,
                timeout: float = 120, stream: bool = False) -> str:
    """Run a set-up command (in its own session, stopped with the rest on Ctrl-C)."""
    process = procs.start(argv, env, cwd, stdin=stdin is not None)
    try:
        if stream:
            lines = []
            for raw in process.stdout or ():
                line = raw.decode(errors="replace").rstrip()
                lines.append(line)
                if line.startswith("  seed:"):
                    print(line, flush=True)
            process.wait(timeout=timeout)
            out = "\n".join(lines)
        else:
            stdout, _ = process.communicate(stdin.encode() if stdin else None, timeout)
            out = stdout.decode(errors="replace")
    finally:
        procs.stop(process)
    if process.returncode != 0:
        raise BenchError(f"{' '.join(argv[:4])} failed ({process.returncode}):\n{out[-3000:]}")
    return out


def seed_result(output: str) -> Any:
    for line in output.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return None


# -- the site: certificates, database, seed ------------------------------------------------------

@dataclass
class Site:
    root: Path
    env: dict[str, str]
    database: str
    url: str

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    @property
    def ca(self) -> Path:
        return CertPaths(self.certs).ca


def make_site(root: Path, database: str, server_threads: int, pg_url: str = PG_URL,
              settings: dict[str, str] | None = None) -> Site:
    """``authsvc init`` then the 10-user seed, with BCRYPT_ROUNDS=10 for authsvc and any
    ``--set`` settings."""
    root.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env.update({"AUTHSVC_INSTANCE": str(root / "instance"),
                "AUTHSVC_CERTS_DIR": str(root / "certs"),
                "AUTHSVC_BCRYPT_ROUNDS": str(BCRYPT_ROUNDS),
                "AUTHSVC_THREADS": str(server_threads), "PYTHONPATH": str(SRC)})
    env.update({f"AUTHSVC_{key}": value for key, value in (settings or {}).items()})
    if database == "postgresql":
        run_checked([python(), "-m", "bench.seed", "reset-postgres", pg_url], env, SRC)
        env["AUTHSVC_DATABASE_URL"] = pg_url
        url = pg_url
        CREATED_DATABASES.append(pg_url)
    else:
        url = f"sqlite:///{root / 'instance' / 'authsvc.db'}"
    run_checked([executable("authsvc"), "init", "--admin", "admin", "--admin-password-stdin"],
                env, root, stdin="admin-bench-password\n")
    counts = seed_result(run_checked([python(), "-m", "bench.seed", "small"], env, SRC))
    log(f"site ready ({database}): {counts}")
    return Site(root, env, database, url)


# -- servers ---------------------------------------------------------------------------------------

@dataclass
class Server:
    #: "authsvc", "baseline" (signs per request), "gthread" (the same behind gunicorn) or
    #: "bcrypt" (bcrypt + sign)
    role: str
    port: int
    process: Any
    log_path: Path
    rss_rest: dict[int, float] = field(default_factory=dict)
    rss_peak: dict[int, float] = field(default_factory=dict)
    rss_after: dict[int, float] = field(default_factory=dict)
    #: CPU seconds each worker used in measured runs: shows how the load spread over them.
    cpu: dict[int, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return {"authsvc": "authsvc", "baseline": "baseline", "gthread": "baseline-gthread",
                "bcrypt": "bcrypt-baseline"}[self.role]

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    def pids(self) -> list[int]:
        return [self.process.pid, *procs.descendants(self.process.pid)]

    def workers(self) -> list[int]:
        return procs.descendants(self.process.pid)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def start_server(role: str, site: Site, args: argparse.Namespace, tmp: Path) -> Server:
    port = free_port()
    log_path = tmp / f"{role}-{port}.log"
    env = dict(site.env)
    certs = site.certs
    if role == "authsvc":
        argv = [executable("authsvc"), "serve", "--host", HOST, "--port", str(port),
                "--workers", str(args.workers)]
        cwd = site.root
    else:
        argv = [python(), "-m", "bench.baseline_app", "--mode",
                "bcrypt" if role == "bcrypt" else "sign",
                "--server", "gthread" if role == "gthread" else "authsvc",
                "--certs", str(certs), "--host", HOST, "--port", str(port),
                "--workers", str(args.workers), "--threads", str(args.server_threads),
                "--bcrypt-rounds", str(BCRYPT_ROUNDS)]
        cwd = SRC
        env["BENCH_PASSWORD"] = PASSWORD
    process = procs.start(argv, env, cwd, log_path)
    return Server(role, port, process, log_path)


def https_request(server: Server, ca: Path, method: str, path: str, body: str | None = None,
                  headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(ca))
    connection = http.client.HTTPSConnection(HOST, server.port, timeout=30, context=context)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_ready(server: Server, ca: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"{server.label} exited ({server.process.returncode}):\n"
                             f"{server.log_tail()}")
        try:
            if https_request(server, ca, "GET", "/nowhere")[0] == 404:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.2)
    raise BenchError(f"{server.label} did not answer within {timeout:.0f} s:\n{server.log_tail()}")


def rss_snapshot(server: Server) -> dict[int, float]:
    return {pid: value for pid in server.workers() if (value := procs.rss_mib(pid)) is not None}


def token_claims(body: bytes) -> dict[str, Any]:
    token = json.loads(body)["token"]
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def get_refresh_token(server: Server, ca: Path) -> str:
    path = scope_query(f"repository:{PRIVATE_REPO}:pull,push") + (
        f"&offline_token=true&client_id={CLIENT_ID}")
    status, body = https_request(server, ca, "GET", path, headers={"Authorization": BASIC_HEADER})
    if status != 200 or "refresh_token" not in json.loads(body):
        raise BenchError(f"no refresh token from authsvc: {status} {body[:300]!r}")
    return str(json.loads(body)["refresh_token"])


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


def preflight(server: Server, ca: Path, kind: Kind, refresh_token: str) -> None:
    """Each distinct request once: 200 and a token that grants what was asked (authsvc must
    not look fast by denying)."""
    expected = ["pull"] if kind.name == "anon" else ["pull", "push"]
    for method, path, body, headers in requests_for(kind, refresh_token):
        status, answer = https_request(server, ca, method, path, body, headers)
        if status != 200:
            raise BenchError(f"{server.label} {kind.name}: {method} {path} answered {status}: "
                             f"{answer[:300]!r}")
        access = token_claims(answer)["access"]
        if not access or access[0]["actions"] != expected:
            raise BenchError(f"{server.label} {kind.name}: token access {access!r}, expected "
                             f"actions {expected}")


# -- wrk -------------------------------------------------------------------------------------------

def write_scripts(tmp: Path, refresh_token: str) -> dict[str, Path]:
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


def wrk_argv(server: Server, kind: Kind, scripts: dict[str, Path], seconds: int,
             connections: int, threads: int, close: bool = False) -> list[str]:
    """wrk's command line; ``close`` sends ``Connection: close`` (a new connection, and so
    any worker, for every request)."""
    argv = [executable("wrk"), "--latency", "-t", str(min(threads, connections)),
            "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s"]
    if close:
        argv += ["-H", "Connection: close"]
    if kind.basic_auth:
        argv += ["-H", f"Authorization: {BASIC_HEADER}"]
    if kind.name in scripts:
        argv += ["-s", str(scripts[kind.name])]
    path = {"anon": ANON_PATH, "basic": BASIC_PATH}.get(kind.name, "/token")
    return [*argv, server.url + path]


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise BenchError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
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
    process = procs.start(argv, os.environ, REPO)
    try:
        stdout, _ = process.communicate(timeout=seconds + 60)
    finally:
        procs.stop(process)
    out = stdout.decode(errors="replace")
    if process.returncode != 0:
        raise BenchError(f"wrk failed ({process.returncode}): {out[-2000:]}")
    return out


def measure(server: Server, kind: Kind, scripts: dict[str, Path], args: argparse.Namespace,
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
        # Warm every worker, not only those the kept-alive connections land on: first with a
        # new connection per request, then as measured.
        spread = max(1, args.warmup // 2)
        run_wrk(wrk_argv(server, kind, scripts, spread, connections, threads, close=True),
                spread)
        if args.warmup > spread:
            run_wrk(wrk_argv(server, kind, scripts, args.warmup - spread, connections, threads),
                    args.warmup - spread)
    argv = wrk_argv(server, kind, scripts, seconds, connections, threads)
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
        "kind": kind.name, "server": server.label, "connections": connections,
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


# -- profiling -------------------------------------------------------------------------------------

def _record(spy: str, server: Server, kind: Kind, scripts: dict[str, Path],
            args: argparse.Namespace, tmp: Path, seconds: int, gil: bool) -> list[str]:
    """py-spy raw stacks of every worker, ``seconds`` long, while wrk drives ``kind``."""
    load = procs.start(wrk_argv(server, kind, scripts, seconds + 2, args.connections,
                                args.threads), os.environ, REPO)
    raws = []
    try:
        time.sleep(1)
        spies = []
        for worker in server.workers():
            raw = tmp / f"profile-{kind.name}-{worker}-{'gil' if gil else 'wall'}.txt"
            raws.append(raw)
            spies.append(procs.start(
                [spy, "record", "--pid", str(worker), "--duration", str(seconds), "--rate",
                 "200", "--format", "raw", "--output", str(raw), *(["--gil"] if gil else [])],
                os.environ, REPO, tmp / "py-spy.log"))
        for spy_process in spies:
            try:
                spy_process.wait(timeout=seconds + 60)
            finally:
                procs.stop(spy_process)
        load.communicate(timeout=seconds + 60)
    finally:
        procs.stop(load)
    return [line for raw in raws if raw.exists() for line in raw.read_text().splitlines()]


def profile(server: Server, kind: Kind, scripts: dict[str, Path], args: argparse.Namespace,
            tmp: Path) -> dict[str, Any] | None:
    """py-spy on every worker under the same load, twice: every thread that is not idle
    (wall: includes waiting for locks, the database, the GIL), and only the thread holding the
    GIL (where Python spends the CPU)."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        log("py-spy not installed: no profile")
        return None
    seconds = max(2, min(args.duration, 6))
    summary: dict[str, Any] = {"seconds": seconds}
    for mode in ("wall", "gil"):
        lines = _record(spy, server, kind, scripts, args, tmp, seconds, mode == "gil")
        if not lines:
            log(f"py-spy wrote no profile: {(tmp / 'py-spy.log').read_text()[-500:]}")
            return None
        raw = RESULTS_DIR / f"profile-{kind.name}-{mode}.txt"
        raw.write_text("\n".join(lines) + "\n")
        summary[mode] = summarize_profile(raw)
    return summary


#: A thread whose innermost Python line is one of these is waiting for work, not serving.
IDLE_LINE = re.compile(r"(\bsleep|\.wait|\.select|\.poll|work_queue\.get|jobs\.get)\(")

#: Where a sample's time goes: the innermost frame whose file matches, checked in this order.
LAYERS = (
    ("database (SQLAlchemy, driver)", ("sqlalchemy/", "sqlite3/", "psycopg/", "psycopg_")),
    ("JWT signing (PyJWT, cryptography)", ("jwt/", "cryptography/")),
    ("password hashing", ("passlib/", "bcrypt/")),
    ("logging (access log, audit lines)", ("logging/",)),
    ("TLS and sockets", ("ssl.py", "socket.py", "selectors.py")),
    ("server (granian, the RSGI bridge, the event loop)",
     ("granian/", "authsvc/rsgi_bridge.py", "asyncio/", "uvloop/")),
    ("Flask and Werkzeug", ("flask/", "werkzeug/")),
    ("authsvc's own code", ("authsvc/",)),
)


def _frame(frame: str) -> tuple[str, str, int]:
    match = re.match(r"(.*) \((.*?)(?::(\d+))?\)$", frame)
    if not match:
        return frame, "", 0
    return match.group(1), match.group(2), int(match.group(3) or 0)


def _source_line(path: str, number: int) -> str:
    import linecache
    import sysconfig

    paths = sysconfig.get_paths()
    for root in (SRC, Path(paths["stdlib"]), Path(paths["purelib"])):
        candidate = root / path
        if candidate.exists():
            return linecache.getline(str(candidate), number)
    return linecache.getline(path, number)


def _layer(frames: list[tuple[str, str, int]]) -> str:
    for _, path, _ in reversed(frames):
        for layer, markers in LAYERS:
            if any(marker in path for marker in markers):
                return layer
    return "other"


def summarize_profile(raw: Path, top: int = 10) -> dict[str, Any]:
    """Share of busy samples per layer, the authsvc functions with the most time under them,
    and the functions the samples are in."""
    layers: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f]
        name, path, number = frames[-1]
        if IDLE_LINE.search(_source_line(path, number)):
            idle += count
            continue
        total += count
        layers[_layer(frames)] += count
        own[f"{name} ({path})"] += count
        for func in {f"{n} ({p})" for n, p, _ in frames if p.startswith("authsvc/")
                     and not p.startswith(("authsvc/cli/", "authsvc/server.py"))}:
            ours[func] += count
    total = max(total, 1)

    def pct(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(k, round(100 * c / total, 1)) for k, c in counter.most_common(n)]

    return {"samples": total, "idle_samples": idle, "file": str(raw.relative_to(REPO)),
            "layers": pct(layers, len(LAYERS) + 1), "authsvc": pct(ours, top),
            "self": pct(own, top)}


# -- reports ---------------------------------------------------------------------------------------

def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def judge(kind: Kind, run: dict[str, Any], references: dict[str, dict[str, Any]]) -> None:
    """Add ratio, target and met? to an authsvc run."""
    reference = references.get(kind.reference)
    ratio = run["rps"] / reference["rps"] if reference and reference["rps"] else None
    run["ratio"] = ratio
    # The same comparison in server CPU per request: steadier when the machine is busy.
    run["cpu_ratio"] = (reference["cpu_ms_per_req"] / run["cpu_ms_per_req"]
                        if reference and reference["cpu_ms_per_req"] and run["cpu_ms_per_req"]
                        else None)
    run["ratio_to"] = {"baseline": "baseline", "bcrypt": "bcrypt-baseline"}[kind.reference]
    if "baseline" in references and references["baseline"]["rps"]:
        run["ratio_to_signing_baseline"] = run["rps"] / references["baseline"]["rps"]
    # Against the signing baseline behind gunicorn gthread: what moving to authsvc from a
    # classic Python token service behind gunicorn gains (shown, not judged).
    if "gthread" in references and references["gthread"]["rps"]:
        run["ratio_to_gthread"] = run["rps"] / references["gthread"]["rps"]
    run["target"] = (f">={kind.min_ratio:g}x {run['ratio_to']}, p99<={P99_TARGET_MS:g}ms, "
                     "0 errors")
    misses = []
    if ratio is None or ratio < kind.min_ratio:
        misses.append("req/s")
    if run["p99_ms"] is None or run["p99_ms"] > P99_TARGET_MS:
        misses.append("p99")
    if run["errors"]:
        misses.append("errors")
    run["met"] = not misses
    run["missed"] = misses


def print_table(runs: list[dict[str, Any]]) -> None:
    header = (f"{'kind':<8} {'server':<16} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'errors':>6} {'cpu ms/req':>10} {'other%':>6} {'top wkr%':>8} {'ratio':>8} "
              f"{'cpu ratio':>9} {'vs gthread':>10}  "
              f"{'target':<44} met?")
    print(header)
    print("-" * len(header))
    for run in runs:
        ratio = f"{run['ratio']:.2f}x" if run.get("ratio") is not None else ""
        cpu_ratio = f"{run['cpu_ratio']:.2f}x" if run.get("cpu_ratio") is not None else ""
        gthread = (f"{run['ratio_to_gthread']:.2f}x" if run.get("ratio_to_gthread") is not None
                   else "")
        met = ("" if "met" not in run else "yes" if run["met"] else
               "NO (" + ", ".join(run["missed"]) + ")")
        print(f"{run['kind']:<8} {run['server']:<16} {fmt(run['rps']):>9} "
              f"{fmt(run['p50_ms'], 2):>8} {fmt(run['p99_ms'], 2):>8} {run['errors']:>6} "
              f"{fmt(run['cpu_ms_per_req'], 2):>10} {fmt(run['other_cpu_pct'], 0):>6} "
              f"{fmt(run['top_worker_pct'], 0):>8} "
              f"{ratio:>8} {cpu_ratio:>9} {gthread:>10}  {run.get('target', ''):<44} {met}")


def print_rss(servers: list[Server]) -> None:
    print(f"\nper worker{'':<17}{'RSS MiB: at rest':>16} {'peak under load':>16} "
          f"{'after load':>11} {'CPU s in runs':>14}")
    for server in servers:
        for pid in sorted(set(server.rss_rest) | set(server.rss_peak) | set(server.rss_after)):
            print(f"  {server.label:<15} pid {pid:<7} {fmt(server.rss_rest.get(pid)):>13} "
                  f"{fmt(server.rss_peak.get(pid)):>16} {fmt(server.rss_after.get(pid)):>11} "
                  f"{fmt(server.cpu.get(pid)):>14}")


def print_profile(kind: str, summary: dict[str, Any]) -> None:
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
    return {s.label: {str(pid): {"rest": s.rss_rest.get(pid), "peak": s.rss_peak.get(pid),
                                 "after": s.rss_after.get(pid), "cpu_s": s.cpu.get(pid)}
                      for pid in sorted(set(s.rss_rest) | set(s.rss_peak))} for s in servers}


def git(*argv: str) -> str:
    try:
        return subprocess.run(["git", *argv], cwd=REPO, capture_output=True,  # noqa: S603,S607
                              text=True, timeout=60, check=False).stdout.strip()
    except OSError:
        return ""


def authsvc_under_test(args: argparse.Namespace) -> dict[str, Any]:
    """Which authsvc code the servers run: commit, changed files, a hash of its sources."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((SRC / "authsvc").rglob("*.py")):
        digest.update(str(path.relative_to(SRC)).encode() + b"\0" + path.read_bytes())
    if args.ref:
        return {"source": f"git archive of {args.ref}",
                "commit": git("rev-parse", "--short", args.ref), "changed": [],
                "sources_sha256": digest.hexdigest()[:16]}
    changed = [line[3:] for line in git("status", "--porcelain", "--", "authsvc").splitlines()]
    return {"source": str(REPO), "commit": git("rev-parse", "--short", "HEAD"),
            "changed": changed, "sources_sha256": digest.hexdigest()[:16]}


def describe(code: dict[str, Any]) -> str:
    changed = (f" + {len(code['changed'])} uncommitted file(s) in authsvc/"
               if code["changed"] else "")
    return f"authsvc {code['commit']}{changed} (sources {code['sources_sha256']})"


def snapshot(ref: str, tmp: Path) -> Path:
    """``git archive`` of ``ref`` with this checkout's bench/ copied in."""
    src = tmp / "src"
    src.mkdir()
    archive = tmp / "src.tar"
    done = subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), ref],  # noqa: S603,S607
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise BenchError(f"git archive {ref}: {done.stderr.strip()}")
    shutil.unpack_archive(archive, src, "tar")
    shutil.rmtree(src / "bench", ignore_errors=True)
    shutil.copytree(REPO / "bench", src / "bench",
                    ignore=shutil.ignore_patterns("results", "__pycache__"))
    return src


# -- modes -----------------------------------------------------------------------------------------

def start_servers(roles: list[str], site: Site, args: argparse.Namespace,
                  tmp: Path) -> list[Server]:
    servers = [start_server(role, site, args, tmp) for role in roles]
    for server in servers:
        wait_ready(server, site.ca)
    time.sleep(0.5)
    for server in servers:
        server.rss_rest = rss_snapshot(server)
        log(f"{server.label} on {server.url}: pid {server.process.pid}, "
            f"workers {server.workers()}")
    return servers


def stop_servers(servers: list[Server]) -> None:
    for server in servers:
        server.rss_after = rss_snapshot(server)
        procs.stop(server.process)


def normal_mode(args: argparse.Namespace, tmp: Path, report: dict[str, Any]) -> bool:
    kinds = [KINDS[k] for k in args.kinds]
    site = make_site(tmp / "site", args.database, args.server_threads, settings=args.settings)
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
        references: dict[str, dict[str, Any]] = {}
        for role in ("baseline", "bcrypt") if kind.basic_auth else ("baseline", "gthread"):
            if role in by_role:
                log(f"{kind.name}: {by_role[role].label}")
                references[role] = measure(by_role[role], kind, scripts, args)
                runs.append(references[role])
        log(f"{kind.name}: authsvc")
        run = measure(by_role["authsvc"], kind, scripts, args)
        judge(kind, run, references)
        runs.append(run)
        if args.profile:
            log(f"{kind.name}: profiling an authsvc worker")
            summary = profile(by_role["authsvc"], kind, scripts, args, tmp)
            if summary:
                profiles[kind.name] = summary
    stop_servers(servers)
    print(f"\n== authsvc token benchmark, {describe(report['authsvc'])}: granian, "
          f"{args.workers} workers x "
          f"{args.server_threads} threads, wrk -t{args.threads} -c{args.connections} "
          f"-d{args.duration}s, {args.database}, bcrypt cost {BCRYPT_ROUNDS}"
          + "".join(f", {key}={value}" for key, value in args.settings.items()))
    print_table(runs)
    print_rss(servers)
    for name, summary in profiles.items():
        print_profile(name, summary)
    report.update({"runs": runs, "rss_mib": rss_json(servers), "profiles": profiles})
    return all(run.get("met", True) for run in runs) and not any(r["errors"] for r in runs)


def growth_mode(args: argparse.Namespace, tmp: Path, report: dict[str, Any]) -> bool:
    """Two sites on one database engine: the 10-user one and the same plus the growth data,
    both served at once and measured alternately (kind by kind), so that load from elsewhere
    on the machine hits both alike."""
    kinds = [KINDS[k] for k in args.kinds]
    ok = True
    for database in args.databases:
        small = make_site(tmp / f"small-{database}", database, args.server_threads,
                          PG_SMALL_URL, args.settings)
        big = make_site(tmp / f"growth-{database}", database, args.server_threads, PG_URL,
                        args.settings)
        log(f"seeding growth data (scale {args.scale}) into {database}")
        seeded = seed_result(run_checked(
            [python(), "-m", "bench.seed", "bulk", big.url, "--scale", str(args.scale),
             "--bcrypt-rounds", str(BCRYPT_ROUNDS)], big.env, SRC, timeout=7200, stream=True))
        log(f"seeded in {seeded['seconds']} s: {seeded}")
        cases = {"10 users": small, "growth": big}
        servers = {case: start_servers(["authsvc"], site, args, tmp)[0]
                   for case, site in cases.items()}
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
                    run = measure(servers[case], kind, scripts[case], args,
                                  connections=connections,
                                  threads=args.threads if connections > 1 else 1,
                                  warmup=connections > 1)
                    run["case"] = case
                    pair[case] = run
                pairs.append((pair["10 users"], pair["growth"]))
        stop_servers(list(servers.values()))
        for small_run, big_run in pairs:
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
            ok = ok and big_run["met"] is not False
        print(f"\n== growth ({database}), {describe(report['authsvc'])}: a 10-user site, "
              "and the same plus "
              f"{seeded.get('users', 0):,} users, {seeded.get('namespaces', 0):,} namespaces, "
              f"{seeded.get('repositories', 0):,} repositories, {seeded.get('grants', 0):,} "
              f"grants, {seeded.get('refresh_tokens', 0):,} refresh tokens (seeded in "
              f"{seeded.get('seconds', '?')} s); measured alternately; granian, "
              f"{args.workers} workers x {args.server_threads} threads, -d{args.duration}s")
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
        rss = {case: rss_json([server])["authsvc"] for case, server in servers.items()}
        print("\nper authsvc worker: RSS MiB at rest / peak under load / after load, "
              "CPU s in runs")
        for case, workers in rss.items():
            values = "; ".join(f"{fmt(v['rest'])} / {fmt(v['peak'])} / {fmt(v['after'])}, "
                               f"{fmt(v['cpu_s'])} s" for v in workers.values())
            print(f"  {case:<9} {values}")
        report.setdefault("growth", {})[database] = {
            "seeded": seeded, "runs": [r for pair in pairs for r in pair], "rss_mib": rss}
    return ok


# -- main ------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run", description="Benchmark authsvc's token endpoint against same-run "
        "baselines on loopback (HTTPS, the configured server, wrk).")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run "
                        "(default 10; 1 with --quick)")
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
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"comma list of {', '.join(KINDS)} (default all)")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"),
                        default="sqlite", help="authsvc's database (PostgreSQL: "
                        f"{PG_URL.rsplit('@', 1)[-1]}, and {PG_SMALL_URL.rsplit('/', 1)[-1]} "
                        "in growth mode; made empty, dropped at the end)")
    parser.add_argument("--growth", action="store_true", help="authsvc alone on a 10-user "
                        "site and on one with 100k users / 10k namespaces / 1M grants "
                        "(x --scale) more, measured alternately")
    parser.add_argument("--scale", type=float, default=1.0, help="growth data scale "
                        "(default 1.0; 0.1 = 10k users, 1k namespaces, 100k grants)")
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
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 1
        args.warmup = 1 if args.warmup is None else args.warmup
        if args.scale == 1.0:
            args.scale = 0.01
    if args.warmup is None:
        args.warmup = max(1, args.duration // 5)
    settings = [item.partition("=") for item in args.settings]
    if any(not key or not sep for key, sep, _ in settings):
        parser.error("--set takes KEY=VALUE, e.g. --set TOKEN_CACHE_SECONDS=0")
    args.settings = {key.removeprefix("AUTHSVC_"): value for key, _, value in settings}
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in args.kinds if k not in KINDS]
    if unknown or not args.kinds:
        parser.error(f"unknown kind {unknown}: use {', '.join(KINDS)}")
    if args.database == "both" and not args.growth:
        parser.error("--database both only with --growth")
    args.databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    if min(args.duration, args.connections, args.threads, args.workers,
           args.server_threads) < 1 or args.scale <= 0:
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
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    global SRC
    args = parse_args(argv)
    signal.signal(signal.SIGINT, _interrupt)  # also when started with SIGINT ignored (&)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    RESULTS_DIR.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="authsvc-bench-"))
    started = time.monotonic()
    mode = "growth" if args.growth else "quick" if args.quick else "normal"
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
        if args.ref:
            SRC = snapshot(args.ref, tmp)
        report["authsvc"] = code = authsvc_under_test(args)
        log(f"measuring {describe(code)}")
        met = growth_mode(args, tmp, report) if args.growth else normal_mode(args, tmp, report)
        status = 0
        print(f"\ntargets {'all met' if met else 'NOT all met'}")
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        report["error"] = str(e)
    except KeyboardInterrupt:
        print("bench: interrupted; stopping everything", file=sys.stderr)
        report["error"] = "interrupted"
        status = 130
    except Exception as e:  # noqa: BLE001 - report it, stop everything, keep the JSON
        import traceback

        traceback.print_exc()
        report["error"] = f"{type(e).__name__}: {e}"
    finally:
        procs.stop_all()
        if not args.keep:
            for url in CREATED_DATABASES:
                try:
                    run_checked([python(), "-m", "bench.seed", "drop-postgres", url],
                                {**os.environ, "PYTHONPATH": str(REPO)}, REPO)
                except (BenchError, OSError, KeyboardInterrupt) as e:
                    print(f"bench: could not drop {url.rsplit('/', 1)[-1]}: {e}")
                finally:
                    procs.stop_all()
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            names = ", ".join(url.rsplit("/", 1)[-1] for url in CREATED_DATABASES)
            print(f"kept {tmp}" + (f" and PostgreSQL {names}" if names else ""))
        report["seconds"] = round(time.monotonic() - started, 1)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    text = json.dumps(report, indent=2, default=str)
    (RESULTS_DIR / "latest.json").write_text(text)
    (RESULTS_DIR / f"{mode}-{stamp}.json").write_text(text)
    print(f"{mode} run took {report['seconds']:.0f} s; results in "
          f"{(RESULTS_DIR / 'latest.json').relative_to(REPO)}")
    return status


if __name__ == "__main__":
    sys.exit(main())

"""``--profile``: py-spy on every authsvc worker under load, and where the time goes, by layer
(database, JWT, logging, TLS, the server, Flask, authsvc) and by function."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import procs
from bench.load import Traffic, wrk_argv
from bench.procs import log
from bench.report import RESULTS_DIR
from bench.servers import Server
from bench.site import REPO


def _record(spy: str, server: Server, traffic: Traffic, args: argparse.Namespace, tmp: Path,
            seconds: int, gil: bool) -> list[str]:
    """py-spy raw stacks of every worker, ``seconds`` long, while wrk sends ``traffic``."""
    load = procs.start(wrk_argv(server, traffic, seconds + 2, args.connections, args.threads),
                       os.environ, REPO)
    raws = []
    try:
        time.sleep(1)
        spies = []
        for worker in server.workers():
            raw = tmp / f"profile-{traffic.name}-{worker}-{'gil' if gil else 'wall'}.txt"
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


def profile(server: Server, traffic: Traffic, args: argparse.Namespace,
            tmp: Path, src: Path) -> dict[str, Any] | None:
    """py-spy on every worker under the same load, twice: every thread that is not idle
    (wall: includes waiting for locks, the database, the GIL), and only the thread holding the
    GIL (where Python spends the CPU). ``src``: where the servers import authsvc from."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        log("py-spy not installed: no profile")
        return None
    seconds = max(2, min(args.duration, 6))
    summary: dict[str, Any] = {"seconds": seconds}
    for mode in ("wall", "gil"):
        lines = _record(spy, server, traffic, args, tmp, seconds, mode == "gil")
        if not lines:
            log(f"py-spy wrote no profile: {(tmp / 'py-spy.log').read_text()[-500:]}")
            return None
        raw = RESULTS_DIR / f"profile-{traffic.name}-{mode}.txt"
        raw.write_text("\n".join(lines) + "\n")
        summary[mode] = summarize_profile(raw, src)
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
     ("granian/", "authsvc/server/rsgi_bridge.py", "authsvc/rsgi_bridge.py", "asyncio/",
      "uvloop/")),
    ("Flask and Werkzeug", ("flask/", "werkzeug/")),
    ("authsvc's own code", ("authsvc/",)),
)


#: authsvc's command line and ``authsvc serve`` (as laid out now, and before the layer folders,
#: for ``--ref``): not on the path of a request.
STARTUP = ("authsvc/cli/", "authsvc/server/serve.py", "authsvc/server.py")


def _frame(frame: str) -> tuple[str, str, int]:
    match = re.match(r"(.*) \((.*?)(?::(\d+))?\)$", frame)
    if not match:
        return frame, "", 0
    return match.group(1), match.group(2), int(match.group(3) or 0)


def _source_line(src: Path, path: str, number: int) -> str:
    import linecache
    import sysconfig

    paths = sysconfig.get_paths()
    for root in (src, Path(paths["stdlib"]), Path(paths["purelib"])):
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


def summarize_profile(raw: Path, src: Path, top: int = 10) -> dict[str, Any]:
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
        if IDLE_LINE.search(_source_line(src, path, number)):
            idle += count
            continue
        total += count
        layers[_layer(frames)] += count
        own[f"{name} ({path})"] += count
        for func in {f"{n} ({p})" for n, p, _ in frames if p.startswith("authsvc/")
                     and not p.startswith(STARTUP)}:
            ours[func] += count
    total = max(total, 1)

    def pct(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(k, round(100 * c / total, 1)) for k, c in counter.most_common(n)]

    return {"samples": total, "idle_samples": idle, "file": str(raw.relative_to(REPO)),
            "layers": pct(layers, len(LAYERS) + 1), "authsvc": pct(ours, top),
            "self": pct(own, top)}

"""Processes the benchmark runs: started in their own session and stopped by process group
(with ``tests/e2e/processes.py``, shared with the end-to-end tests), every one of them stopped
on errors and on Ctrl-C; the set-up commands it runs to the end; and what /proc says about
them: descendants, RSS, CPU time, and the whole machine's CPU time."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.e2e.processes import console_script, start_process, stop_process

#: Every process started and not yet stopped; ``stop_all`` empties it (also on Ctrl-C).
STARTED: list[subprocess.Popen[bytes]] = []
TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A step of the benchmark failed: the run stops, and says why."""


def log(message: str) -> None:
    """Print a progress line, with the time."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def python() -> str:
    """The Python running the benchmark (the one with this checkout's authsvc)."""
    return sys.executable


def executable(name: str) -> str:
    """The program ``name``, beside this Python or on PATH; raises BenchError without one."""
    found = console_script(name)
    if found is None:
        raise BenchError(f"{name} is not installed (bench/run installs what it needs)")
    return found


def start(argv: Sequence[str], env: Mapping[str, str], cwd: Path,
          log_path: Path | None = None, stdin: bool = False) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (its own process group), output appended to
    ``log_path`` (to a pipe without one)."""
    process = start_process(argv, env, cwd, log_path, stdin=stdin, append=True)
    STARTED.append(process)
    return process


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL what is left after ``timeout``."""
    stop_process(process, timeout, whole_group=True)
    if process in STARTED:
        STARTED.remove(process)


def stop_all() -> None:
    """Stop every process started and not yet stopped, the newest first."""
    for process in reversed(list(STARTED)):
        try:
            stop(process)
        except Exception as e:  # keep stopping the others
            print(f"bench: could not stop pid {process.pid}: {e}")


def run_checked(argv: list[str], env: Mapping[str, str], cwd: Path, stdin: str | None = None,
                timeout: float = 120, stream: bool = False) -> str:
    """Run a set-up command (in its own session, stopped with the rest on Ctrl-C) and return
    its output; ``stream`` prints its ``  seed:`` lines as they come. Raises BenchError when
    it fails."""
    process = start(argv, env, cwd, stdin=stdin is not None)
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
        stop(process)
    if process.returncode != 0:
        raise BenchError(f"{' '.join(argv[:4])} failed ({process.returncode}):\n{out[-3000:]}")
    return out


def _stat_fields(pid: int) -> list[str] | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()  # fields from 3 (state) on


def descendants(root: int) -> list[int]:
    """Every living descendant of ``root`` (children first)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, queue = [], [root]
    while queue:
        for child in sorted(children.get(queue.pop(0), [])):
            found.append(child)
            queue.append(child)
    return found


def rss_mib(pid: int) -> float | None:
    """The resident memory of ``pid`` in MiB; None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of ``pids`` (all their threads)."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def postgres_pids(database: str) -> list[int]:
    """The PostgreSQL backends on this machine serving ``database`` now (their process title
    names it): their CPU is the database's part of each request."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                title = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if title.startswith("postgres: ") and f" {database} " in title:
                found.append(int(entry))
    return found


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / TICKS


def children_cpu_seconds() -> float:
    """CPU time of waited-for children of this process (wrk, py-spy)."""
    usage = os.times()
    return usage.children_user + usage.children_system


class RssSampler:
    """Samples the RSS of a server's workers every ``interval`` seconds; keeps each one's peak."""

    def __init__(self, workers: Sequence[int], interval: float = 0.25) -> None:
        self.workers = list(workers)
        self.interval = interval
        self.peak: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.workers:
                value = rss_mib(pid)
                if value is not None:
                    self.peak[pid] = max(self.peak.get(pid, 0.0), value)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

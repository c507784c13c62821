"""Processes the benchmark starts (each in its own session, stopped by process group), and what
/proc says about them: descendants, RSS, CPU time, and the whole machine's CPU time."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Every process started and not yet stopped; ``stop_all`` empties it (also on Ctrl-C).
STARTED: list[subprocess.Popen[bytes]] = []
TICKS = os.sysconf("SC_CLK_TCK")


def start(argv: Sequence[str], env: Mapping[str, str], cwd: Path,
          log_path: Path | None = None, stdin: bool = False) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (its own process group), output to ``log_path``."""
    log = log_path.open("ab") if log_path else None
    try:
        process = subprocess.Popen(  # noqa: S603 - our own argv
            list(argv), env=dict(env), cwd=cwd,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=log if log else subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True)
    finally:
        if log:
            log.close()
    STARTED.append(process)
    return process


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL what is left after ``timeout``."""
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
    _signal_group(process.pid, signal.SIGKILL)  # children that outlived their parent
    if process in STARTED:
        STARTED.remove(process)


def stop_all() -> None:
    for process in reversed(list(STARTED)):
        try:
            stop(process)
        except Exception as e:  # noqa: BLE001 - keep stopping the others
            print(f"bench: could not stop pid {process.pid}: {e}")


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


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

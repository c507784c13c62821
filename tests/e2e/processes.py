"""Start, probe and stop the long-running servers of the end-to-end tests."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from authsvc.server.log_output import FLUSH_INTERVAL

STOP_TIMEOUT = 10.0
LOG_TAIL_CHARS = 6000


def settle_log() -> None:
    """Wait until the lines of requests already answered are in the log: ``authsvc serve``
    writes its log in batches (authsvc.server.log_output)."""
    time.sleep(3 * FLUSH_INTERVAL)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """A server process started by a fixture, with its combined output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        """Return the process id."""
        return self.process.pid

    def is_running(self) -> bool:
        """Return whether the process has not exited yet."""
        return self.process.poll() is None

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        """Return the end of the service log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the process by PID: SIGTERM, then SIGKILL after ``timeout``.

        The process runs in its own session, so any children it forked (for
        example server workers) share its process group and are killed too.
        """
        if self.is_running():
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        _kill_group(self.pid)


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of the process group ``pgid``, if anything."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def start_service(
    name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path
) -> Service:
    """Start ``argv`` in its own session with stdout and stderr going to ``log_path``."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Service(name, process, log_path)


def https_status(url_host: str, port: int, path: str, ca_file: Path) -> int | None:
    """GET ``https://url_host:port/path`` trusting only ``ca_file``.

    Returns the HTTP status, or None when nothing answers yet (connection
    refused or reset). TLS verification errors are raised, not hidden.
    """
    context = ssl.create_default_context(cafile=str(ca_file))
    connection = http.client.HTTPSConnection(url_host, port, timeout=5, context=context)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
        return None
    finally:
        connection.close()


def https_headers(url_host: str, port: int, path: str, ca_file: Path) -> dict[str, str]:
    """GET ``https://url_host:port/path`` and return the response headers (lower-case names)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    connection = http.client.HTTPSConnection(url_host, port, timeout=5, context=context)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return {key.lower(): value for key, value in response.getheaders()}
    finally:
        connection.close()


def wait_for(
    service: Service, ready: Callable[[], bool], what: str, timeout: float = 30.0
) -> None:
    """Poll ``ready`` until it is true, the service dies, or ``timeout`` passes.

    Raises RuntimeError carrying the service log when the service is not ready
    or the probe itself fails (for example a TLS verification error).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.is_running():
            raise RuntimeError(
                f"{service.name} exited with status {service.process.returncode} "
                f"before {what}; log:\n{service.log_tail()}"
            )
        try:
            if ready():
                return
        except Exception as exc:
            raise RuntimeError(f"{service.name}: probing '{what}' failed: {exc!r}; log:\n"
                               f"{service.log_tail()}") from exc
        time.sleep(0.1)
    raise RuntimeError(f"{service.name} did not reach '{what}' in {timeout}s; log:\n"
                       f"{service.log_tail()}")

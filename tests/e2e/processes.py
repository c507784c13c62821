"""Start, probe and stop the long-running servers of the end-to-end tests and of the benchmark
(``bench/`` imports this module): the program to run, a site's environment, a free loopback
port, a process in its own session stopped by process group, and one HTTPS request trusting
only the site's CA. Only the standard library and authsvc, so that ``bench`` needs no test
dependency to import it.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from authsvc.server.log_output import FLUSH_INTERVAL

STOP_TIMEOUT = 10.0
LOG_TAIL_CHARS = 6000
LOOPBACK = "127.0.0.1"


def settle_log() -> None:
    """Wait until the lines of requests already answered are in the log: ``authsvc serve``
    writes its log in batches (authsvc.server.log_output)."""
    time.sleep(3 * FLUSH_INTERVAL)


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def console_script(name: str) -> str | None:
    """Return the path of the program ``name``: the one installed beside this Python (its
    virtual environment) first, else the first on PATH; None when there is none."""
    beside_python = str(Path(sys.executable).parent)
    return shutil.which(name, path=beside_python) or shutil.which(name)


def site_environment(root: Path, base: Mapping[str, str],
                     settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment of the authsvc site in ``root``: ``base`` without its
    ``AUTHSVC_*`` variables, the site's instance and certificate folders (``root/instance``,
    ``root/certs``), and ``AUTHSVC_<KEY>`` for each of ``settings``."""
    env = {key: value for key, value in base.items() if not key.startswith("AUTHSVC_")}
    env.update({"AUTHSVC_INSTANCE": str(root / "instance"),
                "AUTHSVC_CERTS_DIR": str(root / "certs")})
    env.update({f"AUTHSVC_{key}": value for key, value in (settings or {}).items()})
    return env


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
        stop_process(self.process, timeout)


def start_process(argv: Sequence[str], env: Mapping[str, str], cwd: Path,
                  log_path: Path | None = None, *, stdin: bool = False,
                  append: bool = False) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (its own process group), stdout and stderr going to
    ``log_path`` (appended to with ``append``), or to a pipe without one; ``stdin`` gives it
    a pipe to read from instead of nothing."""
    log = log_path.open("ab" if append else "wb") if log_path else None
    try:
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=log if log else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if log:
            log.close()


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT, *,
                 whole_group: bool = False) -> None:
    """Stop a process started by ``start_process``: SIGTERM (to it alone, or to its whole
    process group with ``whole_group``), then SIGKILL after ``timeout``; then SIGKILL what is
    left of its process group (children that outlived it)."""
    if process.poll() is None:
        if whole_group:
            signal_group(process.pid, signal.SIGTERM)
        else:
            process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            if whole_group:
                signal_group(process.pid, signal.SIGKILL)
            else:
                process.kill()
            process.wait(timeout=timeout)
    signal_group(process.pid, signal.SIGKILL)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group ``pgid``, if it still exists."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def start_service(
    name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path
) -> Service:
    """Start ``argv`` in its own session with stdout and stderr going to ``log_path``."""
    return Service(name, start_process(argv, env, cwd, log_path), log_path)


def https_request(host: str, port: int, ca_file: Path, method: str = "GET", path: str = "/",
                  body: str | None = None, headers: Mapping[str, str] | None = None,
                  timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One request to ``https://host:port/path`` trusting only ``ca_file``; returns the
    status, the response headers (lower-case names) and the body. Connection and TLS
    errors are raised."""
    context = ssl.create_default_context(cafile=str(ca_file))
    connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        content = response.read()
        return (response.status, {key.lower(): value for key, value in response.getheaders()},
                content)
    finally:
        connection.close()


def https_status(url_host: str, port: int, path: str, ca_file: Path) -> int | None:
    """GET ``https://url_host:port/path`` trusting only ``ca_file``.

    Returns the HTTP status, or None when nothing answers yet (connection
    refused or reset). TLS verification errors are raised, not hidden.
    """
    try:
        return https_request(url_host, port, ca_file, "GET", path)[0]
    except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
        return None


def https_headers(url_host: str, port: int, path: str, ca_file: Path) -> dict[str, str]:
    """GET ``https://url_host:port/path`` and return the response headers (lower-case names)."""
    return https_request(url_host, port, ca_file, "GET", path)[1]


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

"""Serving the app over HTTPS with granian: Rust HTTP/1 and TLS (1.2 or newer), WSGI workers.

``serve`` runs in the ``authsvc serve`` process, which only supervises: each worker process
imports ``worker_app`` and builds its own app from the same environment and instance folder.
"""

import atexit
import ctypes
import logging
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
from pathlib import Path
from typing import Any

from flask import Flask
from granian import Granian
from granian.constants import HTTPModes, Interfaces, SSLProtocols
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.common import AbstractServer

from authsvc import create_app
from authsvc.certs import CertPaths, check_private_key_file
from authsvc.config import ENV_PREFIX

WORKER_TARGET = "authsvc.server:worker_app"
LOG_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
# The path without the query: POST /token reads its form from the query too, so a client may
# put a password or refresh token there. No header is logged, Authorization least of all.
ACCESS_FORMAT = '%(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms'
# Seconds a worker gets to finish its requests when stopped before it is killed.
WORKER_KILL_TIMEOUT = 5
# prctl(2): the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1

# One handler, on the root logger: authsvc's INFO lines (audit events among them), granian's
# own and access lines, and other libraries' warnings, each once, in one format, written in
# batches (log_output). Granian applies this in the supervisor and again in every worker.
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"authsvc": {"()": "authsvc.log_output.LogFormatter", "fmt": LOG_FORMAT}},
    "handlers": {"stderr": {"class": "authsvc.log_output.BatchingStreamHandler",
                            "formatter": "authsvc"}},
    "loggers": {"authsvc": {"level": "INFO"}, "_granian": {"level": "INFO"},
                "granian.access": {"level": "INFO"}},
    "root": {"level": "WARNING", "handlers": ["stderr"]},
}


def _stop_with_supervisor() -> None:
    """Have this worker stopped (SIGTERM) when the ``authsvc serve`` process dies, even by
    SIGKILL: granian's workers do not watch their parent, and would keep serving on."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    supervisor = multiprocessing.parent_process()
    if supervisor is not None and os.getppid() != supervisor.pid:  # it died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


#: CGI request fields. Granian starts every request's WSGI environ from a copy of the process
#: environment, so a variable with one of these names (or ``HTTP_*``, a request header) would
#: look like part of every request that lacks it: an ``HTTP_AUTHORIZATION`` in the server's
#: environment would be every anonymous client's credentials.
CGI_FIELDS = frozenset({
    "AUTH_TYPE", "CONTENT_LENGTH", "CONTENT_TYPE", "GATEWAY_INTERFACE", "PATH_INFO",
    "PATH_TRANSLATED", "QUERY_STRING", "REMOTE_ADDR", "REMOTE_HOST", "REMOTE_IDENT",
    "REMOTE_USER", "REQUEST_METHOD", "SCRIPT_NAME", "SERVER_NAME", "SERVER_PORT",
    "SERVER_PROTOCOL", "SERVER_SOFTWARE", "HTTPS"})


def _forget_request_like_variables() -> None:
    for name in [n for n in os.environ if n in CGI_FIELDS or n.startswith(("HTTP_", "wsgi."))]:
        del os.environ[name]


def _lighter_log_records() -> None:
    """Skip what log records would gather but LOG_FORMAT never shows (the caller's file and
    line, thread and multiprocessing names): the logging HOWTO's "Optimization" settings.
    Every token request writes an audit line, so they add up."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False


def worker_app() -> Flask:
    """The app of one worker process (granian's factory target)."""
    _stop_with_supervisor()
    _forget_request_like_variables()
    _lighter_log_records()
    # Granian ends a worker with os._exit, which skips atexit: run those handlers (the audit
    # batch flush among them) when the worker process ends, as they would run elsewhere.
    multiprocessing.util.Finalize(None, atexit._run_exitfuncs, exitpriority=0)
    app = create_app()
    app.extensions["authsvc"].issuer  # noqa: B018 - load the key, compute its kid: at start
    return app


def serve(instance_path: Path, certs_root: Path, host: str, port: int, workers: int,
          threads: int) -> None:
    """Run ``workers`` processes of ``threads`` threads each until SIGTERM or SIGINT, which
    stop them all.

    The workers read their settings as this process did, from the environment and
    ``instance_path``. Raises CertificateError, before anything starts, when the HTTPS key
    is missing or group or others may read it.
    """
    certs = CertPaths(certs_root)
    check_private_key_file(certs.authsvc_key)
    # The folders as resolved here, whatever the working directory of a worker.
    os.environ[f"{ENV_PREFIX}_INSTANCE"] = str(instance_path)
    os.environ[f"{ENV_PREFIX}_CERTS_DIR"] = str(certs_root)
    granian(WORKER_TARGET, certs, host, port, workers, threads).serve()


def granian(target: str, certs: CertPaths, host: str, port: int, workers: int,
            threads: int) -> "AbstractServer[Any]":
    """The server ``authsvc serve`` runs, for the WSGI app factory ``target`` (the benchmark
    runs its baselines behind the very same settings)."""
    return Granian(
        target=target, factory=True, interface=Interfaces.WSGI,
        address=host, port=port, workers=workers, blocking_threads=threads,
        http=HTTPModes.http1, websockets=False, http1_settings=HTTP1Settings(keep_alive=True),
        ssl_cert=certs.authsvc, ssl_key=certs.authsvc_key, ssl_protocol_min=SSLProtocols.tls12,
        respawn_failed_workers=True, workers_kill_timeout=WORKER_KILL_TIMEOUT,
        log_level=LogLevels.info, log_dictconfig=LOGGING,
        log_access=True, log_access_format=ACCESS_FORMAT)

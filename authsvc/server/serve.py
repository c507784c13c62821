"""Serving the app over HTTPS with granian: Rust HTTP/1 and TLS (1.2 or newer), WSGI workers.

``serve`` runs in the ``authsvc serve`` process, which only supervises: each worker process
imports ``worker_app`` and builds its own app from the same environment and instance folder.
"""

import atexit
import ctypes
import gc
import logging
import multiprocessing
import multiprocessing.util
import os
import shutil
import signal
import site
import sys
from pathlib import Path
from typing import Any, NoReturn

from granian import Granian
from granian.constants import HTTPModes, Interfaces, Loops, SSLProtocols
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.common import AbstractServer

from authsvc.app import create_app
from authsvc.config import ENV_PREFIX, metrics_enabled
from authsvc.db.services import services_of
from authsvc.observability.metrics import (
    MULTIPROC_VARIABLE,
    mark_process_dead,
    use_multiprocess,
)
from authsvc.pki.certs import CertPaths, check_private_key_file
from authsvc.server.rsgi_bridge import BodyFirstWSGI, WSGIApp

WORKER_TARGET = "authsvc.server.serve:worker_app"
#: How ``granian`` tells the workers how many threads to run the app on.
THREADS_VARIABLE = f"{ENV_PREFIX}_THREADS"
#: The PID of the process that runs granian, for its workers to tell whether it died before
#: they asked to be stopped with it.
SUPERVISOR_VARIABLE = f"{ENV_PREFIX}_SUPERVISOR_PID"
LOG_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
# The path without the query: POST /token reads its form from the query too, so a client may
# put a password or refresh token there. No header is logged, Authorization least of all.
ACCESS_FORMAT = '%(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms'
# Seconds a worker gets to finish its requests when stopped before it is killed.
WORKER_KILL_TIMEOUT = 5
# prctl(2): the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1
#: The folder, in the instance folder, of each ``authsvc serve`` run's metrics folder.
METRICS_FOLDER = "metrics"

# One handler, on the root logger: authsvc's INFO lines (audit events among them), granian's
# own and access lines, and other libraries' warnings, each once, in one format, written in
# batches (log_output). Granian applies this in the supervisor and again in every worker.
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"authsvc": {"()": "authsvc.server.log_output.LogFormatter", "fmt": LOG_FORMAT}},
    "handlers": {"stderr": {"class": "authsvc.server.log_output.BatchingStreamHandler",
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
    # Until granian sets the worker's own handler, after the app is loaded, SIGTERM would run
    # the handler this process inherited from the supervisor, which stops nothing here: a
    # worker told to stop while it loads would then serve on. The default ends it at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The supervisor may have died before prctl (a worker loads its app after it started):
    # then this process has been handed to another parent, and nothing would stop it.
    supervisor = os.environ.get(SUPERVISOR_VARIABLE)
    if supervisor is None:
        parent = multiprocessing.parent_process()
        supervisor = str(parent.pid) if parent is not None else None
    if supervisor is not None and str(os.getppid()) != supervisor:
        os.kill(os.getpid(), signal.SIGTERM)


def _lighter_log_records() -> None:
    """Skip what log records would gather but LOG_FORMAT never shows (the caller's file and
    line, thread and multiprocessing names): the logging HOWTO's "Optimization" settings.
    Every token request writes an audit line, so they add up."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False


def start_worker() -> None:
    """What every worker process does first, whatever app it serves."""
    _stop_with_supervisor()
    _lighter_log_records()
    # Granian ends a worker with os._exit, which skips atexit: run those handlers (the audit
    # batch flush among them) when the worker process ends, as they would run elsewhere.
    multiprocessing.util.Finalize(None, atexit._run_exitfuncs, exitpriority=0)


def body_first(app: WSGIApp, max_body: int, body_timeout: float) -> BodyFirstWSGI:
    """``app`` as the server runs it: bodies read first, then ``THREADS`` threads (as
    ``granian`` left it in the environment), one access line per request."""
    threads = int(os.environ.get(THREADS_VARIABLE, "4"))
    return BodyFirstWSGI(app, threads=threads, max_body=max_body, body_timeout=body_timeout,
                         access_format=ACCESS_FORMAT)


def worker_app() -> BodyFirstWSGI:
    """The app of one worker process (granian's factory target)."""
    start_worker()
    app = create_app()
    services_of(app).issuer  # noqa: B018 - load the key, compute its kid: at start
    directory = os.environ.get(MULTIPROC_VARIABLE)
    if directory and metrics_enabled(app.config):
        share_metrics(Path(directory))
    served = body_first(app.wsgi_app, app.config["MAX_CONTENT_LENGTH"],
                        app.config["BODY_TIMEOUT"])
    freeze_startup_objects()
    return served


def freeze_startup_objects() -> None:
    """Keep what the worker built at start (modules, the app, its services: about 100,000
    objects) out of every later garbage collection, as the gc module's docs advise for a
    process that forks and then serves. A full collection then walks only what requests made
    since: measured on a worker's app, 45 ms before, under 0.1 ms after; that pause stopped
    every request of the worker (a full collection holds the GIL) and showed in the slowest
    ones' latency."""
    gc.collect()
    gc.freeze()


def share_metrics(directory: Path) -> None:
    """Keep this worker's metrics in ``directory``, where every worker's are added up by the
    one that answers a scrape; when the worker ends (``start_worker`` runs atexit handlers),
    its live values are marked dead."""
    use_multiprocess(directory)
    atexit.register(mark_process_dead, os.getpid(), directory)


def metrics_directory(instance_path: Path) -> Path:
    """A new, empty, owner-only folder for this run's metrics, ``instance/metrics/<pid>``
    (removed when this process ends); the folders of runs whose process is gone are removed
    first, those of another run still going are left alone."""
    base = instance_path / METRICS_FOLDER
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    base.chmod(0o700)
    for old in base.iterdir():
        if not old.name.isdigit() or int(old.name) == os.getpid() or not running(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    directory = base / str(os.getpid())
    directory.mkdir(mode=0o700)
    directory.chmod(0o700)
    atexit.register(remove_metrics_directory, directory, os.getpid())
    return directory


def remove_metrics_directory(directory: Path, owner: int) -> None:
    """Remove ``directory``, in the process that made it only: the workers (forked from it)
    inherit its atexit handlers and run them when they end."""
    if os.getpid() == owner:
        shutil.rmtree(directory, ignore_errors=True)


def running(pid: int) -> bool:
    """Whether a process ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def exec_serve(instance_path: Path, certs_root: Path, host: str, port: int, workers: int,
               threads: int) -> NoReturn:
    """Become ``python -m authsvc.server`` with these arguments (the same process, PID and
    environment), which runs ``serve``.

    Granian forks its workers from the process that runs it, and a worker starts with every
    page of its parent in its memory. ``authsvc serve`` has imported the whole command line
    by then (alembic for the schema upgrade, requests for the registry commands); the new
    process imports the server alone. Measured: 90 MiB per worker at rest before, 77 after.
    Raises CertificateError, before anything is replaced, when the HTTPS key is unsafe.
    """
    check_private_key_file(CertPaths(certs_root).authsvc_key)
    sys.stdout.flush()
    sys.stderr.flush()
    # authsvc imported from where this process found it (-P: not from the working folder); a
    # site-packages folder is found anyway, and put first it could hide the standard library
    found = str(Path(__file__).resolve().parents[2])
    installed = {str(Path(folder).resolve()) for folder in site.getsitepackages()}
    path = os.pathsep.join(filter(None, [None if found in installed else found,
                                         os.environ.get("PYTHONPATH")]))
    os.execve(sys.executable, [sys.executable, "-P", "-m", "authsvc.server",  # noqa: S606
                               str(instance_path), str(certs_root), host, str(port),
                               str(workers), str(threads)], {**os.environ, "PYTHONPATH": path})


def serve(instance_path: Path, certs_root: Path, host: str, port: int, workers: int,
          threads: int) -> None:
    """Run ``workers`` processes of ``threads`` threads each until SIGTERM or SIGINT, which
    stop them all.

    The workers read their settings as this process did, from the environment and
    ``instance_path``; with metrics on they count into this run's ``metrics_directory``.
    Raises CertificateError, before anything starts, when the HTTPS key
    is missing or group or others may read it.
    """
    certs = CertPaths(certs_root)
    check_private_key_file(certs.authsvc_key)
    # The folders as resolved here, whatever the working directory of a worker.
    os.environ[f"{ENV_PREFIX}_INSTANCE"] = str(instance_path)
    os.environ[f"{ENV_PREFIX}_CERTS_DIR"] = str(certs_root)
    os.environ[MULTIPROC_VARIABLE] = str(metrics_directory(instance_path))
    granian(WORKER_TARGET, certs, host, port, workers, threads).serve()


def granian(target: str, certs: CertPaths, host: str, port: int, workers: int,
            threads: int) -> "AbstractServer[Any]":
    """The server ``authsvc serve`` runs, for ``target``, a factory of a ``body_first`` app
    (the benchmark runs its baselines behind the very same settings): ``threads`` threads per
    worker call the app."""
    os.environ[THREADS_VARIABLE] = str(threads)
    os.environ[SUPERVISOR_VARIABLE] = str(os.getpid())
    return Granian(
        target=target, factory=True, interface=Interfaces.RSGI, loop=Loops.uvloop,
        address=host, port=port, workers=workers,
        http=HTTPModes.http1, websockets=False, http1_settings=HTTP1Settings(keep_alive=True),
        ssl_cert=certs.authsvc, ssl_key=certs.authsvc_key, ssl_protocol_min=SSLProtocols.tls12,
        respawn_failed_workers=True, workers_kill_timeout=WORKER_KILL_TIMEOUT,
        log_level=LogLevels.info, log_dictconfig=LOGGING,
        # the access line is the bridge's (body_first): granian's wraps every request twice
        log_access=False)

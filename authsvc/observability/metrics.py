"""authsvc's Prometheus metrics: their names, help, labels, and where their values live.

Every label takes its values from a short fixed list (or, for the request latency, from the
app's route names): never a user, repository or path, so the number of series stays bounded.

By default the values live in this process, in a registry of its own (tests, ``flask run``).
``authsvc serve`` runs several worker processes: each calls ``use_multiprocess`` before its
first request, then writes its values to files of its own in one directory, and a scrape adds
up every process's (prometheus_client's multi-process mode). The metrics are built on first
use, so a process switched to multi-process mode (after a fork) builds them afresh.
"""

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: How a token was asked for: no credentials, a password (GET Basic or POST
#: ``grant_type=password``), an access token given as the password, a refresh token.
GRANT_TYPES = ("anonymous", "password", "access_token", "refresh_token")
#: Why a token request was refused: 401, 429 (lockout), any other 4xx, the database
#: unreachable (503), anything else (500).
REFUSAL_REASONS = ("bad_credentials", "locked_out", "bad_request", "database_unavailable",
                   "error")
#: What a lockout refusal was counted against (``LOCKOUT_ATTEMPTS``, ``LOCKOUT_ADDRESS_ATTEMPTS``).
LOCKOUT_KINDS = ("account", "address")
#: The registry's notifications: each event of a stored envelope counts once, as recorded,
#: duplicate (already recorded), ignored (of no interest) or rejected (malformed); an envelope
#: refused whole counts once, as unauthorized, malformed or unavailable (not stored: the
#: registry sends it again).
NOTIFICATION_OUTCOMES = ("recorded", "duplicate", "ignored", "rejected", "unauthorized",
                         "malformed", "unavailable")
#: Request latency buckets, seconds: a cached token takes well under a millisecond, a bcrypt
#: check tens of milliseconds, a search up to a second.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)
#: The route label of a request that matched no route (a 404, or refused before routing).
UNMATCHED = "unmatched"
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: The variable that names the folder of multi-process mode (prometheus_client's).
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# No ``*_created`` series (the time each series was made): multi-process mode has none either,
# so a scrape shows the same series under `authsvc serve` as elsewhere.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """The metrics of one process. The series of every fixed label value exist from the start
    (at 0, so a rate over them needs no special case), and the hot paths reach them without
    ``labels()``: ``tokens_issued["password"].inc()``."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        issued = Counter("authsvc_tokens_issued", "Tokens issued by /token, by grant type.",
                         ["grant_type"], registry=registry)
        refused = Counter("authsvc_tokens_refused", "Token requests refused, by reason.",
                          ["reason"], registry=registry)
        lockouts = Counter("authsvc_lockouts", "Logins refused because the account or the "
                           "client address is over its failed-login limit.", ["kind"],
                           registry=registry)
        notifications = Counter("authsvc_registry_notifications", "The registry's "
                                "notifications received, by outcome.", ["outcome"],
                                registry=registry)
        self.database_errors = Counter("authsvc_database_errors", "Requests answered 503 "
                                       "because the database was unreachable or busy.",
                                       registry=registry)
        self.request_seconds = Histogram("authsvc_request_duration_seconds", "Time to answer "
                                         "a request, by route (the app's endpoint name).",
                                         ["route"], buckets=LATENCY_BUCKETS,
                                         registry=registry)
        self.tokens_issued = {name: issued.labels(name) for name in GRANT_TYPES}
        self.tokens_refused = {name: refused.labels(name) for name in REFUSAL_REASONS}
        self.lockouts = {name: lockouts.labels(name) for name in LOCKOUT_KINDS}
        self.notifications = {name: notifications.labels(name)
                              for name in NOTIFICATION_OUTCOMES}
        self._routes: dict[str, Histogram] = {}

    def observe_request(self, route: str, seconds: float) -> None:
        """Count one request to ``route`` (an endpoint name: a fixed set) taking ``seconds``."""
        child = self._routes.get(route)
        if child is None:
            child = self._routes.setdefault(route, self.request_seconds.labels(route))
        child.observe(seconds)


class _Current:
    """This process's metrics, built on first use, and where their values live."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.metrics: Metrics | None = None
        self.registry: CollectorRegistry | None = None
        self.directory: Path | None = None


_current = _Current()


def metrics() -> Metrics:
    """This process's metrics (built on the first call)."""
    found = _current.metrics
    if found is None:
        with _current.lock:
            if _current.metrics is None:
                multi = _current.directory is not None
                # In multi-process mode the values are the files; no registry holds them.
                _current.registry = None if multi else CollectorRegistry(auto_describe=True)
                _current.metrics = Metrics(_current.registry)
            found = _current.metrics
    return found


def use_multiprocess(directory: Path) -> None:
    """From now on keep this process's values in files of its own in ``directory`` (which must
    exist), and let a scrape add up every process's there. Call it in each worker process
    after the fork (the process's id is taken now, and names its files), before it serves;
    the metrics are built afresh."""
    with _current.lock:
        # where prometheus_client's values open their files
        os.environ[MULTIPROC_VARIABLE] = str(directory)
        # This process's id, once: prometheus_client would ask the kernel at every increment
        # (it checks for a fork; the workers fork nothing).
        pid = os.getpid()
        values.ValueClass = values.MultiProcessValue(  # type: ignore[no-untyped-call]
            lambda: pid)
        _current.directory = directory
        _current.metrics = None
        _current.registry = None


def multiprocess_directory() -> Path | None:
    """The directory of multi-process mode, or None when the values live in this process."""
    return _current.directory


def mark_process_dead(pid: int, directory: Path) -> None:
    """Forget the live values (``liveall`` gauges) of the stopped process ``pid``; its counters
    stay, so totals never go down."""
    prometheus_multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


class ScrapeTimeGauge(Collector):
    """A gauge whose value is read when Prometheus scrapes (once per scrape, by the process
    that answers it), e.g. a count from the database."""

    def __init__(self, name: str, documentation: str,
                 read: Callable[[], float | None]) -> None:
        self.name = name
        self.documentation = documentation
        self.read = read

    def collect(self) -> Iterable[Metric]:
        """The gauge; nothing when ``read`` returns None (it could not be read now)."""
        found = self.read()
        if found is not None:
            yield GaugeMetricFamily(self.name, self.documentation, value=found)


def exposition(*extra: Collector) -> bytes:
    """Every metric in Prometheus' text format: this process's, or in multi-process mode
    every process's added up, and then ``extra`` collectors' (read now)."""
    metrics()
    scrape = CollectorRegistry()
    if _current.directory is not None:
        prometheus_multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
            scrape, path=str(_current.directory))
    elif _current.registry is not None:
        scrape.register(_current.registry)
    for collector in extra:
        scrape.register(collector)
    return generate_latest(scrape)

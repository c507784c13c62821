"""``GET /healthz`` and ``GET /readyz``: the probes of a load balancer or an orchestrator.

``/healthz`` says the process answers and touches nothing else: restart authsvc when it fails.
``/readyz`` checks what a token needs: a database round trip, the signing key, and Redis when
``REDIS_URL`` is set; send no traffic to a replica while it answers 503. Each check answers
``ok`` or ``failed: <exception type>``: never a URL, a message or key material, since anyone
may ask. The reason goes to the log.
"""

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError

from authsvc.db.models import db
from authsvc.db.services import services_of
from authsvc.observability.metrics import metrics

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

#: Seconds a Redis connection or command may take before the check fails.
REDIS_TIMEOUT = 2
#: Where an app keeps its Redis client for the check (``app.extensions``).
REDIS_CLIENT = "authsvc.health.redis"
OK = "ok"


def register_health(app: Flask) -> None:
    app.register_blueprint(bp)


def answer(status: int, body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def healthz() -> Response:
    """200 ``{"status": "ok"}`` whenever the process answers."""
    return answer(200, {"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """200 with each check's result when every check passes, else 503 naming the failing ones:
    ``{"status": "unavailable", "checks": {"database": "failed: OperationalError", ...}}``."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    checks: dict[str, Callable[[], object]] = {"database": database_round_trip,
                                               "signing_key": lambda: services_of(app).issuer}
    if app.config["REDIS_URL"]:
        checks["redis"] = lambda: redis_client(app).ping()
    results = {name: run_check(name, check) for name, check in checks.items()}
    ready = all(result == OK for result in results.values())
    return answer(200 if ready else 503,
                  {"status": "ok" if ready else "unavailable", "checks": results})


def run_check(name: str, check: Callable[[], object]) -> str:
    """``ok``, or ``failed: <exception type>`` (the exception itself goes to the log)."""
    try:
        check()
    except Exception as error:  # any failure makes the replica not ready, whatever it is
        log.warning("readiness check %s failed: %s: %s", name, type(error).__name__, error)
        return f"failed: {type(error).__name__}"
    return OK


def database_round_trip() -> None:
    """``SELECT 1`` on a connection of the pool (a fresh one when the pool holds none).
    Raises SQLAlchemy's error, and counts it as a database error."""
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1")).scalar_one()
    except (OperationalError, InterfaceError):
        metrics().database_errors.inc()
        raise


def redis_client(app: Flask) -> Any:
    """The app's Redis client for the check, made on first use with short timeouts."""
    client = app.extensions.get(REDIS_CLIENT)
    if client is None:
        import redis

        client = redis.Redis.from_url(app.config["REDIS_URL"], socket_timeout=REDIS_TIMEOUT,
                                      socket_connect_timeout=REDIS_TIMEOUT)
        app.extensions[REDIS_CLIENT] = client
    return client

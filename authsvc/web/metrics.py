"""``GET /metrics``: the Prometheus metrics (``authsvc.observability.metrics``), and the timing
of every request by route.

Off unless ``METRICS_TOKEN`` or ``METRICS_ALLOW`` is set (then 404, as for any unknown path).
A client whose address is in ``METRICS_ALLOW`` scrapes without a token (the address is the
peer's, or behind ``TRUSTED_PROXIES`` the one they forward); any other needs ``Authorization:
Bearer <METRICS_TOKEN>`` (compared in constant time) and gets 401 without it, or 403 when no
token is set.
"""

import hmac
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from ipaddress import ip_network
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from authsvc.config import metrics_enabled
from authsvc.core.client_address import parse_address
from authsvc.core.error_bodies import registry_error
from authsvc.core.opaque_secrets import utc_now
from authsvc.db.models import WebSession, db
from authsvc.observability.metrics import (
    CONTENT_TYPE,
    UNMATCHED,
    ScrapeTimeGauge,
    exposition,
    metrics,
)
from authsvc.web.api import flask_response, request_address
from authsvc.web.api.auth_header import authorization
from authsvc.web.api.body_limit import WSGIApp
from authsvc.web.api.token import PATH as token_path

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

#: The route labels of the paths answered in front of Flask (``TokenEndpoint``).
FRONT_ROUTES = {token_path: "token"}
#: Where ``note_route`` leaves the endpoint name of a request Flask answered.
ROUTE_KEY = "authsvc.route"
CHALLENGE = 'Bearer realm="authsvc metrics"'


def register_metrics(app: Flask) -> None:
    """``/metrics`` and the timing of every request, when ``metrics_enabled``; otherwise a
    404 for /metrics and no timing (the counters, a few increments in the process, stay)."""
    app.register_blueprint(bp)
    if metrics_enabled(app.config):
        app.teardown_request(note_route)
        # Flask's way of adding WSGI middleware (mypy sees a method being replaced)
        app.wsgi_app = RequestTimer(app.wsgi_app)  # type: ignore[method-assign]


def note_route(_error: BaseException | None) -> None:
    """Leave the request's endpoint name in its environ, for ``RequestTimer`` (teardown runs
    for every request Flask answers, errors included)."""
    rule = request.url_rule
    request.environ[ROUTE_KEY] = rule.endpoint if rule is not None else UNMATCHED


class RequestTimer:
    """WSGI middleware: observes how long the app takes to answer each request (until it
    returns the body), labelled with the route's endpoint name: ``token`` for /token, Flask's
    endpoint (``admin.list_users``) otherwise, ``unmatched`` for a path of no route."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.clock = time.perf_counter

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any],
                 ) -> Iterable[bytes]:
        started = self.clock()
        try:
            return self.app(environ, start_response)
        finally:
            metrics().observe_request(route_of(environ), self.clock() - started)


def route_of(environ: dict[str, Any]) -> str:
    """The route label of a request that has been answered: a fixed set, never the path."""
    front = FRONT_ROUTES.get(environ.get("PATH_INFO", ""))
    if front is not None:
        return front
    return str(environ.get(ROUTE_KEY, UNMATCHED))


@bp.get("/metrics")
def scrape() -> Response:
    """The metrics in Prometheus' text format. 404 when metrics are off; 401 (with a Bearer
    challenge) or 403 when the caller may not scrape."""
    config = current_app.config
    if not metrics_enabled(config):
        abort(404)
    refused = refusal(config)
    if refused is not None:
        return refused
    sessions = ScrapeTimeGauge("authsvc_web_sessions_active", "Web sessions that have not "
                               "timed out (read from the database at scrape time).",
                               active_web_sessions)
    response = Response(exposition(sessions), mimetype=None, content_type=CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response


def refusal(config: Mapping[str, Any]) -> Response | None:
    """None when the caller may scrape: its address is in METRICS_ALLOW, or it presents
    METRICS_TOKEN. Otherwise the answer: 401 when a token is set, else 403."""
    address = parse_address(request_address(request.environ))
    if address is not None and any(address in ip_network(entry)
                                   for entry in config["METRICS_ALLOW"]):
        return None
    token: str = config["METRICS_TOKEN"]
    if not token:
        return flask_response(registry_error(403, "DENIED", "this address may not read the "
                                             "metrics"))
    auth = authorization(request.environ.get("HTTP_AUTHORIZATION"))
    presented = auth.token if auth is not None and auth.type == "bearer" else None
    if presented and hmac.compare_digest(presented.encode(), token.encode()):
        return None
    answer = flask_response(registry_error(401, "UNAUTHORIZED", "the metrics need "
                                           "Authorization: Bearer <METRICS_TOKEN>"))
    answer.headers["WWW-Authenticate"] = CHALLENGE
    return answer


def active_web_sessions() -> float | None:
    """How many web sessions have neither timed out (idle or absolute) nor ended; None when
    the database cannot tell now (the other metrics are answered all the same: they matter
    most then)."""
    config = current_app.config
    now = utc_now()
    idle = now - timedelta(seconds=config["WEB_SESSION_IDLE_SECONDS"])
    oldest = now - timedelta(seconds=config["WEB_SESSION_MAX_SECONDS"])
    try:
        count = db.session.execute(select(func.count()).select_from(WebSession).where(
            WebSession.last_seen_at > idle, WebSession.created_at > oldest)).scalar_one()
    except SQLAlchemyError as error:
        log.warning("metrics: active web sessions not read: %s", type(error).__name__)
        db.session.remove()
        return None
    db.session.rollback()  # end the read's transaction now, not at teardown
    return float(count)

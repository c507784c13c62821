"""``POST /api/v1/registry/events``: the registry's notifications (its ``notifications``
endpoint, printed by ``authsvc registry-config``).

The registry authenticates with the secret in ``Authorization: Bearer …`` (compared in constant
time); it sends one event per envelope and retries until it gets a 2xx. The answer comes once
the events are stored (in a group commit, ``authsvc.db.catalog.EventRecorder``): 200 with what
was recorded, 401 for a wrong or missing secret, 400 for a malformed envelope, 503 when the
database could not store them (the registry sends them again). Nothing is recorded unless the
secret is right; an event that is malformed is reported and skipped, the others are recorded.
"""

import logging

from flask import Response, jsonify, request
from sqlalchemy.exc import InterfaceError, OperationalError

from authsvc.core.error_bodies import api_answer
from authsvc.core.opaque_secrets import utc_now
from authsvc.core.registry_events import parse_envelope
from authsvc.errors import AuthenticationFailed, AuthsvcError, CertificateError, MalformedBody
from authsvc.observability.metrics import metrics
from authsvc.web.api import flask_response
from authsvc.web.api.admin import bp, state
from authsvc.web.api.auth_header import authorization

log = logging.getLogger(__name__)


#: Seconds the registry is told to wait before it sends events that could not be stored.
RETRY_AFTER = 5


class EventsNotStored(AuthsvcError):
    status = 503
    code = "UNAVAILABLE"


def unavailable(message: str) -> Response:
    answer = flask_response(api_answer(EventsNotStored(message)))
    answer.headers["Retry-After"] = str(RETRY_AFTER)
    return answer


def require_secret() -> Response | None:
    """None when the request carries the notification secret; the 503 answer when the secret
    file cannot be used (its problem goes to the log, never to the caller). Raises
    AuthenticationFailed for a missing or wrong secret."""
    auth = authorization(request.environ.get("HTTP_AUTHORIZATION"))
    presented = auth.token if auth is not None and auth.type == "bearer" else None
    try:
        secrets = state().notification_secret.current()
    except CertificateError as e:
        log.error("cannot check the registry's notifications: %s", e.message)
        return unavailable("authsvc cannot check notifications now (see its log)")
    if not presented or not secrets.accepts(presented, utc_now()):
        raise AuthenticationFailed("the registry's notification secret is missing or wrong")
    return None


@bp.post("/registry/events")
def registry_events() -> Response:
    counted = metrics().notifications
    try:
        refused = require_secret()
    except AuthenticationFailed:
        counted["unauthorized"].inc()
        raise
    if refused is not None:
        counted["unavailable"].inc()
        return refused
    try:
        envelope = parse_envelope(request.get_data(cache=False))
    except MalformedBody:
        counted["malformed"].inc()
        raise
    for reason in envelope.rejected:
        log.warning("skipped a registry notification: %s", reason)
    try:
        outcome = state().events.record(envelope.events)
    except Exception as e:  # whatever it was, the registry sends them again
        log.warning("registry notifications not stored: %s", type(e).__name__)
        counted["unavailable"].inc()
        if isinstance(e, OperationalError | InterfaceError):
            metrics().database_errors.inc()
        return unavailable("the events could not be stored now; the registry will send them "
                           "again")
    for name, count in (("recorded", outcome.recorded), ("duplicate", outcome.duplicates),
                        ("ignored", envelope.ignored), ("rejected", len(envelope.rejected))):
        if count:
            counted[name].inc(count)
    return jsonify(recorded=outcome.recorded, duplicates=outcome.duplicates,
                   ignored=envelope.ignored, rejected=list(envelope.rejected))

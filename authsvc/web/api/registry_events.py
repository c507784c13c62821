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
from sqlalchemy.exc import SQLAlchemyError

from authsvc.core.opaque_secrets import utc_now
from authsvc.core.registry_events import parse_envelope
from authsvc.errors import AuthenticationFailed, AuthsvcError
from authsvc.web.api.admin import bp, state
from authsvc.web.api.auth_header import authorization

log = logging.getLogger(__name__)


class EventsNotStored(AuthsvcError):
    status = 503
    code = "UNAVAILABLE"


def require_secret() -> None:
    """Raises AuthenticationFailed unless the request carries the notification secret."""
    auth = authorization(request.environ.get("HTTP_AUTHORIZATION"))
    presented = auth.token if auth is not None and auth.type == "bearer" else None
    if not presented or not state().notification_secret.current().accepts(presented,
                                                                           utc_now()):
        raise AuthenticationFailed("the registry's notification secret is missing or wrong")


@bp.post("/registry/events")
def registry_events() -> Response:
    require_secret()
    envelope = parse_envelope(request.get_data(cache=False))
    for reason in envelope.rejected:
        log.warning("skipped a registry notification: %s", reason)
    try:
        outcome = state().events.record(envelope.events)
    except (SQLAlchemyError, TimeoutError) as e:
        raise EventsNotStored("the events could not be stored now; the registry will send "
                              "them again") from e
    return jsonify(recorded=outcome.recorded, duplicates=outcome.duplicates,
                   ignored=envelope.ignored, rejected=list(envelope.rejected))

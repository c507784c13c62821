"""``GET /api/v1/audit``: the audit trail, for admins."""

from datetime import datetime

from flask import Response, request

from authsvc.db.models import AuditEvent
from authsvc.errors import InvalidRequest
from authsvc.web.api.admin import actor, bp, page_args, paged, require, state, timestamp

FIELDS = ("action", "actor", "target", "remote_addr", "client_id", "service", "requested",
          "granted", "detail")


def event_json(row: AuditEvent) -> dict[str, object]:
    return {"id": row.id, "at": timestamp(row.at), **{f: getattr(row, f) for f in FIELDS}}


@bp.get("/audit")
def list_audit() -> Response:
    require(actor().admin and actor().limit is None,
            "only an admin logged in with a password may read the audit trail")
    page, per_page = page_args()
    since_text = request.args.get("since")
    try:
        since = datetime.fromisoformat(since_text) if since_text else None
    except ValueError as e:
        raise InvalidRequest("since must be an ISO 8601 date and time") from e
    rows, total = state().audit.search(
        actor=request.args.get("actor"), action=request.args.get("action"),
        target=request.args.get("target"), since=since, offset=(page - 1) * per_page,
        limit=per_page)
    return paged([event_json(r) for r in rows], total, page, per_page)

"""Holding request bodies without a Content-Length (chunked) to MAX_CONTENT_LENGTH.

Werkzeug stops reading such a stream at the limit, so a form parser would see the body cut
short and serve what it got; this middleware reads at most limit + 1 bytes first and answers 413
when there is more, or hands the app the body with its length known.
"""

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class BodyLimit:
    def __init__(self, app: WSGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any],
                 ) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        # Werkzeug ignores Content-Length on a chunked request, as HTTP says it must.
        if not chunked and (environ.get("CONTENT_LENGTH")
                            or not environ.get("wsgi.input_terminated")):
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(self.limit + 1)
        if len(body) > self.limit:
            payload = json.dumps({"errors": [{"code": "REQUEST_ENTITY_TOO_LARGE", "message":
                                  f"the request body is larger than {self.limit} bytes"}]})
            start_response("413 Request Entity Too Large", [
                ("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                ("Connection", "close")])
            return [payload.encode()]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)

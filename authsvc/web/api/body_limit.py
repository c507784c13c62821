"""Holding request bodies without a Content-Length (chunked) to MAX_CONTENT_LENGTH.

Werkzeug stops reading such a stream at the limit, so a form parser would see the body cut
short and serve what it got; this middleware reads at most limit + 1 bytes first and answers 413
when there is more, or hands the app the body with its length known.
"""

import io
from collections.abc import Callable, Iterable
from typing import Any

from authsvc.core.error_bodies import body_too_large

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
            answer = body_too_large(self.limit)
            start_response(answer.status_line, answer.wsgi_headers())
            return [answer.body]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)

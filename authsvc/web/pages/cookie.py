"""The pages' session cookie: Flask's signed cookie (itsdangerous, HMAC-SHA256), with the key
kept in the certificate folder (``authsvc.pki.web_secret``) and loaded on the first page."""

import hashlib
import threading
from typing import Any

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from authsvc.db.services import services_of
from authsvc.pki.web_secret import ensure_key, key_path

PREFIX = "/ui"


def under_pages(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class CookieSessions(SecureCookieSessionInterface):
    """Signed with SHA-256; the key is SECRET_KEY when set, else the certificate folder's
    ``web-secret-key`` (made when missing), loaded when a page is first asked for."""

    digest_method = staticmethod(hashlib.sha256)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not under_pages(request.path):
            return None  # only the pages have a session
        if not app.secret_key:
            with self._lock:
                if not app.secret_key:
                    app.secret_key = ensure_key(key_path(services_of(app).certs.root))[0]
        return super().open_session(app, request)

    def should_set_cookie(self, app: Flask, session: Any) -> bool:
        return bool(session.modified)

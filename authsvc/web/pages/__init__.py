"""The web pages under ``/ui``: sign in and out, the repositories a user may pull, and each
repository's page. Server-rendered (Jinja), on the same services and rules as the API.

Every page answers with a strict Content-Security-Policy (no inline script or style), refuses
framing, and private pages are never cached. Forms carry Flask-WTF's CSRF token, checked on
every POST of this blueprint only (the API and ``/token`` take no cookies and no forms). The
session cookie (``authsvc_session``, Flask's signed cookie limited to ``/ui``) holds the secret
of a server-side web session (``authsvc.db.web_sessions``).
"""

from collections.abc import Callable

from flask import Blueprint, Flask, Response, abort, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from authsvc.web.pages.cookie import PREFIX, CookieSessions, under_pages
from authsvc.web.pages.current import current_user, load_signed_in
from authsvc.web.pages.formatting import FILTERS

bp = Blueprint("pages", __name__, url_prefix=PREFIX, template_folder="templates",
               static_folder="static", static_url_path="/static")
csrf = CSRFProtect()

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
STATIC = f"{PREFIX}/static/"

#: The app's answer for an error (the registry's JSON format), for what is not a page.
Fallback = Callable[[Exception], Response]


def add_page_headers(response: Response) -> Response:
    """The security headers on every answer under ``/ui``, errors included; ``no-store`` on
    everything but the static files (every page holds a form token or private data)."""
    if under_pages(request.path):
        response.headers.update(HEADERS)
        if not request.path.startswith(STATIC):
            response.headers["Cache-Control"] = "no-store"
    return response


def wants_page() -> bool:
    """Whether the client prefers HTML (a browser) to JSON: everything else gets the
    registry's JSON error, as from any other path."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def not_found_handler(fallback: Fallback) -> Callable[[HTTPException], Response]:
    def not_found(error: HTTPException) -> Response:
        """A page saying what to do for a browser under ``/ui``; the JSON 404 otherwise."""
        if under_pages(request.path) and wants_page():
            return Response(render_template("pages/not_found.html"), status=404)
        return fallback(error)

    return not_found


@bp.errorhandler(CSRFError)
def csrf_failed(error: CSRFError) -> tuple[str, int]:
    """A form without its token, with a wrong or expired one: nothing changed."""
    return render_template("pages/form_expired.html", reason=error.description), 400


@bp.before_request
def refuse_doubled_slashes() -> None:
    """A path with ``//`` is no page (werkzeug strips leading slashes: ``//ui`` matches
    ``/ui``): 404, never the sign-in redirect (see ``authsvc.app.never_redirect``)."""
    if "//" in str(request.environ.get("PATH_INFO", "")):
        abort(404)


@bp.before_request
def check_csrf() -> None:
    """Every POST of the pages carries the form's CSRF token (raises CSRFError)."""
    if request.method == "POST":
        csrf.protect()


# after the CSRF check: a refused form is refused before anything is looked up
bp.before_request(load_signed_in)
bp.app_context_processor(current_user)
for _name, _filter in FILTERS.items():
    bp.add_app_template_filter(_filter, _name)


def register_pages(app: Flask, fallback: Fallback) -> None:
    """Add the pages to ``app``: the signed session cookie (key from the certificate folder,
    made on first use), CSRF for this blueprint only, the headers, and the 404 page;
    ``fallback`` answers errors that are not pages."""
    from authsvc.web.pages import (  # noqa: F401 - routes on bp
        account,
        admin_pages,
        orgs,
        repositories,
        repository_admin,
        signin,
        tokens,
    )

    app.config.update(
        SESSION_COOKIE_NAME="authsvc_session", SESSION_COOKIE_PATH=PREFIX,
        SESSION_COOKIE_SECURE=True, SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", WTF_CSRF_CHECK_DEFAULT=False)
    app.session_interface = CookieSessions()
    csrf.init_app(app)
    app.register_blueprint(bp)
    app.after_request(add_page_headers)
    app.register_error_handler(404, not_found_handler(fallback))

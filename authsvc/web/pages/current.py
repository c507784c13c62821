"""Who is signed in: the web session the cookie names, looked up once per request."""

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlencode

from flask import abort, current_app, g, redirect, request, session
from werkzeug.wrappers import Response

from authsvc.core.policy import Subject, may_manage_repository, may_manage_user
from authsvc.db.audit import set_actor
from authsvc.db.services import Services, services_of
from authsvc.db.web_sessions import SignedIn
from authsvc.web.pages.cookie import PREFIX, under_pages

#: The key of the session cookie that holds the web session's secret.
SESSION_KEY = "sid"
P = ParamSpec("P")
R = TypeVar("R")


def state() -> Services:
    return services_of(current_app)


def signed_in() -> SignedIn | None:
    """This request's web session, or None."""
    found: SignedIn | None = g.get("signed_in")
    return found


def subject() -> Subject:
    """Who is signed in (only in views behind ``sign_in_required``)."""
    found = signed_in()
    assert found is not None  # noqa: S101 - sign_in_required ran first
    return found.subject


def load_signed_in() -> None:
    """Find the web session of the cookie; forget a secret that opens none (timed out,
    revoked, its user disabled)."""
    secret = session.get(SESSION_KEY)
    found = state().web_sessions.find(secret) if isinstance(secret, str) else None
    if found is None and secret is not None:
        session.pop(SESSION_KEY, None)
    g.signed_in = found
    if found is not None:
        set_actor(found.subject.name or "")


def safe_next(target: str | None) -> str:
    """``target`` when it is a path of the pages (never another host or scheme), else the
    pages' home."""
    if (not target or not under_pages(target.split("?", 1)[0]) or "//" in target
            or "\\" in target or any(ord(c) < 33 or ord(c) == 127 for c in target)):
        return PREFIX
    return target


def sign_in_required(view: Callable[P, R]) -> Callable[P, R | Response]:
    """Send a visitor who is not signed in to the sign-in page, back here afterwards."""

    @wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        if signed_in() is None:
            here = request.path + (f"?{request.query_string.decode()}"
                                   if request.query_string else "")
            return redirect(f"{PREFIX}/signin?{urlencode({'next': here})}", code=303)
        return view(*args, **kwargs)

    return guarded


def current_user() -> dict[str, Any]:
    """What every page's template sees: ``current``, the SignedIn or None."""
    return {"current": g.get("signed_in")}


def own_name() -> str:
    """The signed-in user's name: they manage their own account and tokens (403 otherwise)."""
    who = subject()
    name = who.name or ""
    if not may_manage_user(who, name):
        abort(403)
    return name


def manages(name: str) -> bool:
    """Whether the signed-in user may change the repository ``name`` (its visibility,
    description, grants, record): ``may_manage_repository`` on what they hold there."""
    who = subject()
    return may_manage_repository(who, state().authorizer.facts(who, name))

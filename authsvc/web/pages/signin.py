"""Signing in with the password ``docker login`` takes (lockout and audit apply; an access
token is not a web login), and signing out."""

from flask import render_template, request, session
from flask.typing import ResponseReturnValue
from werkzeug.utils import redirect

from authsvc.core.policy import Subject
from authsvc.db import access_tokens
from authsvc.db.audit import Event, current_origin, set_actor
from authsvc.db.credentials import recordable_name
from authsvc.errors import AuthenticationFailed, NotFound, TooManyAttempts
from authsvc.web.pages import bp
from authsvc.web.pages.cookie import PREFIX
from authsvc.web.pages.current import SESSION_KEY, safe_next, signed_in, state
from authsvc.web.pages.forms import SignInForm

WRONG = "Wrong user name or password."
LOCKED = "Too many failed sign-ins. Wait a few minutes and try again."
NOT_A_WEB_LOGIN = "An access token cannot sign in here: use your password."


def authenticate(username: str, password: str) -> Subject:
    """The user a password proves (``Credentials.basic``: lockout and audit apply). Raises
    AuthenticationFailed, also for an access token, TooManyAttempts."""
    address = current_origin().remote_addr or None
    if password.startswith(access_tokens.PREFIX):
        name = recordable_name(username)
        state().audit.record(Event("login.failed", target=name[:300],
                                   detail="web: an access token is not a web login"),
                             actor=name[:300])
        raise AuthenticationFailed(NOT_A_WEB_LOGIN)
    return state().credentials.basic(username, password, address)


def start_session(subject: Subject) -> None:
    """A new web session; a new cookie (and form token), so nothing from before carries over."""
    assert subject.name is not None  # noqa: S101 - a password login names its user
    secret = state().web_sessions.create(subject.name, request.user_agent.string,
                                         current_origin().remote_addr)
    session.clear()
    session[SESSION_KEY] = secret
    set_actor(subject.name)


@bp.route("/signin", methods=["GET", "POST"])
def sign_in() -> ResponseReturnValue:
    target = safe_next(request.values.get("next"))
    if signed_in() is not None:
        return redirect(target, code=303)
    form = SignInForm()
    status, problem = (422 if request.method == "POST" else 200), ""
    if form.validate_on_submit():
        try:
            subject = authenticate(form.username.data or "", form.password.data or "")
        except TooManyAttempts:
            status, problem = 429, LOCKED
        except AuthenticationFailed as failed:
            status, problem = 401, NOT_A_WEB_LOGIN if failed.message == NOT_A_WEB_LOGIN else WRONG
        else:
            start_session(subject)
            return redirect(target, code=303)
    return render_template("pages/signin.html", form=form, problem=problem, next=target), status


@bp.post("/signout")
def sign_out() -> ResponseReturnValue:
    found = signed_in()
    if found is not None:
        try:
            state().web_sessions.revoke(found.session_id)
        except NotFound:
            pass  # ended meanwhile (another tab, a password change)
    session.clear()
    return redirect(f"{PREFIX}/signin", code=303)

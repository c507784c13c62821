"""The signed-in user's account (``/ui/account``): change the password, and see and end the
signed-in Docker clients (refresh tokens) and browsers (web sessions). The same services and
rule as the API (``may_manage_user``: a web session is a password login).

A new password ends every web session and refresh token of the user (``Accounts``); the
browser that changed it is signed in again with a fresh session."""

from flask import abort, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.utils import redirect

from authsvc.errors import AuthenticationFailed, AuthsvcError, NotFound, TooManyAttempts
from authsvc.web.pages import bp
from authsvc.web.pages.account_forms import PasswordChangeForm
from authsvc.web.pages.cookie import PREFIX
from authsvc.web.pages.current import own_name, sign_in_required, signed_in, state
from authsvc.web.pages.signin import LOCKED, authenticate, start_session

NOT_CURRENT = "This is not your current password."
CHANGED = "changed"



def render_account(form: PasswordChangeForm | None = None, status: int = 200,
                   changed: bool = False) -> ResponseReturnValue:
    username = own_name()
    current = signed_in()
    return render_template(
        "pages/account.html", form=form or PasswordChangeForm(formdata=None), changed=changed,
        refresh_tokens=state().refresh_tokens.list_for(username),
        web_sessions=state().web_sessions.list_for(username),
        current_session=current.session_id if current else None), status


@bp.get("/account")
@sign_in_required
def account() -> ResponseReturnValue:
    return render_account(changed=request.args.get("password") == CHANGED)


@bp.post("/account/password")
@sign_in_required
def change_password() -> ResponseReturnValue:
    username = own_name()
    form = PasswordChangeForm()
    if not form.validate_on_submit():
        return render_account(form, status=422)
    try:
        proven = authenticate(username, form.current_password.data or "")
    except TooManyAttempts:
        form.current_password.errors = [*form.current_password.errors, LOCKED]
        return render_account(form, status=429)
    except AuthenticationFailed:
        form.current_password.errors = [*form.current_password.errors, NOT_CURRENT]
        return render_account(form, status=422)
    try:
        state().accounts.update_user(username, password=form.new_password.data or "")
    except AuthsvcError as e:
        form.new_password.errors = [*form.new_password.errors, e.message]
        return render_account(form, status=422)
    # every web session of the user ended with the change, this one too: start a fresh one
    start_session(proven)
    return redirect(f"{PREFIX}/account?password={CHANGED}", code=303)


@bp.post("/account/refresh-tokens/<int(max=2147483647):token_id>/revoke")
@sign_in_required
def revoke_refresh_token(token_id: int) -> ResponseReturnValue:
    try:
        state().refresh_tokens.revoke(token_id, own_name())
    except NotFound:
        abort(404)
    return redirect(f"{PREFIX}/account", code=303)


@bp.post("/account/sessions/<int(max=2147483647):session_id>/revoke")
@sign_in_required
def revoke_web_session(session_id: int) -> ResponseReturnValue:
    try:
        state().web_sessions.revoke(session_id, own_name())
    except NotFound:
        abort(404)
    current = signed_in()
    if current is not None and current.session_id == session_id:
        return redirect(f"{PREFIX}/signin", code=303)  # this browser signed itself out
    return redirect(f"{PREFIX}/account", code=303)

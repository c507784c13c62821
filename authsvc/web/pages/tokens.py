"""The signed-in user's access tokens (``/ui/tokens``): the list (never a secret), a form that
creates one and shows its secret once, and revoking one. The same services and rule as the
API's ``/users/NAME/tokens`` (``may_manage_user``: a web session is a password login)."""

import re

from flask import abort, current_app, render_template
from flask.typing import ResponseReturnValue
from werkzeug.utils import redirect

from authsvc.errors import AuthsvcError, NotFound
from authsvc.web.pages import bp
from authsvc.web.pages.account_forms import PERMISSION_CHOICES, AccessTokenForm
from authsvc.web.pages.cookie import PREFIX
from authsvc.web.pages.current import own_name, sign_in_required, state


def render_tokens(form: AccessTokenForm | None = None, status: int = 200,
                  problem: str = "") -> ResponseReturnValue:
    tokens = state().access_tokens.list_for(own_name())
    return render_template("pages/tokens.html", tokens=tokens, problem=problem,
                           choices=PERMISSION_CHOICES,
                           form=form or AccessTokenForm(formdata=None, permission="read")), status


@bp.get("/tokens")
@sign_in_required
def access_tokens() -> ResponseReturnValue:
    return render_tokens()


@bp.post("/tokens")
@sign_in_required
def create_access_token() -> ResponseReturnValue:
    username = own_name()
    form = AccessTokenForm()
    if not form.validate_on_submit():
        return render_tokens(form, status=422)
    repositories = [r for r in re.split(r"[\s,]+", form.repositories.data or "") if r]
    try:
        info, secret = state().access_tokens.create(
            username, (form.name.data or "").strip(), form.permission.data or "",
            expires_in_days=form.expires_in_days.data, repositories=repositories)
    except AuthsvcError as e:
        return render_tokens(form, status=422, problem=e.message)
    host = str(current_app.config["REGISTRY_HOST"])
    login = f"echo {secret} | docker login -u {username} --password-stdin {host}"
    return render_template("pages/token_created.html", token=info, secret=secret,
                           login=login)


@bp.post("/tokens/<int(max=2147483647):token_id>/revoke")
@sign_in_required
def revoke_access_token(token_id: int) -> ResponseReturnValue:
    try:
        state().access_tokens.revoke(token_id, own_name())
    except NotFound:
        abort(404)
    return redirect(f"{PREFIX}/tokens", code=303)

"""The admin pages (``/ui/admin/...``): the users, all repositories and the audit trail, for
admins signed in
with a password only; anyone else gets the 404 of a page that does not exist. Changes go
through ``Accounts`` as the API's do (``authsvc.web.api.users``), with the same rules: the
last enabled admin keeps the flag, and disabling a user ends their web sessions."""

from datetime import datetime, timedelta
from urllib.parse import urlencode

from flask import abort, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.utils import redirect

from authsvc.db.audit import REFUSED_ACTIONS
from authsvc.errors import AuthsvcError, NotFound
from authsvc.web.pages import bp
from authsvc.web.pages.admin_forms import AddUserForm, ResetPasswordForm
from authsvc.web.pages.cookie import PREFIX
from authsvc.web.pages.current import signed_in, state
from authsvc.web.pages.repositories import MAX_QUERY, rows_of

USERS_PER_PAGE = 50
REPOSITORIES_PER_PAGE = 50
AUDIT_PER_PAGE = 50
MAX_PAGE = 100_000
#: The audit trail's outcome filter: its values and their labels.
OUTCOMES = {"": "Any", "succeeded": "Succeeded", "refused": "Refused or failed"}
USERS = f"{PREFIX}/admin/users"


def require_admin() -> None:
    """404 for anyone but an admin signed in (a web session is a password login)."""
    found = signed_in()
    if found is None or not found.subject.admin or found.subject.limit is not None:
        abort(404)


def page_number() -> int:
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        return 1
    return min(max(page, 1), MAX_PAGE)


def render_users(add_form: AddUserForm | None = None, reset_form: ResetPasswordForm | None = None,
                 reset_for: str | None = None, error: str | None = None,
                 status: int = 200) -> ResponseReturnValue:
    page = page_number()
    accounts = state().accounts
    total = accounts.count_users()
    users = accounts.list_users((page - 1) * USERS_PER_PAGE, USERS_PER_PAGE)
    return render_template(
        "pages/admin_users.html", users=users, page=page, total=total,
        pages=max(1, -(-total // USERS_PER_PAGE)),
        add_form=add_form or AddUserForm(formdata=None),
        reset_form=reset_form or ResetPasswordForm(formdata=None), reset_for=reset_for,
        error=error), status


@bp.get("/admin")
def admin_home() -> ResponseReturnValue:
    require_admin()
    return redirect(USERS, code=303)


@bp.get("/admin/users")
def admin_users() -> ResponseReturnValue:
    """The users; with ``reset=NAME``, the form to reset that user's password on top."""
    require_admin()
    reset = request.args.get("reset", "")
    try:
        found = state().accounts.get_user(reset[:300]) if reset else None
    except NotFound:
        found = None
    return render_users(reset_for=found.username if found and not found.robot else None)


@bp.post("/admin/users")
def admin_add_user() -> ResponseReturnValue:
    require_admin()
    form = AddUserForm()
    if not form.validate_on_submit():
        return render_users(add_form=form, status=422)
    try:
        state().accounts.create_user(form.username.data or "", form.password.data or "",
                                     admin=bool(form.admin.data))
    except AuthsvcError as e:
        form.username.errors = [*form.username.errors, e.message]
        return render_users(add_form=form, status=422)
    return redirect(USERS, code=303)


def update(name: str, *, admin: bool | None = None,
           disabled: bool | None = None) -> ResponseReturnValue:
    require_admin()
    try:
        state().accounts.update_user(name, admin=admin, disabled=disabled)
    except AuthsvcError as e:
        return render_users(error=f"{name}: {e.message}", status=e.status)
    return redirect(USERS, code=303)


@bp.post("/admin/users/<name>/disable")
def admin_disable_user(name: str) -> ResponseReturnValue:
    return update(name, disabled=True)


@bp.post("/admin/users/<name>/enable")
def admin_enable_user(name: str) -> ResponseReturnValue:
    return update(name, disabled=False)


@bp.post("/admin/users/<name>/make-admin")
def admin_make_admin(name: str) -> ResponseReturnValue:
    return update(name, admin=True)


@bp.post("/admin/users/<name>/remove-admin")
def admin_remove_admin(name: str) -> ResponseReturnValue:
    return update(name, admin=False)


@bp.post("/admin/users/<name>/password")
def admin_reset_password(name: str) -> ResponseReturnValue:
    require_admin()
    form = ResetPasswordForm()
    if not form.validate_on_submit():
        return render_users(reset_form=form, reset_for=name, status=422)
    try:
        state().accounts.update_user(name, password=form.new_password.data or "")
    except AuthsvcError as e:
        form.new_password.errors = [*form.new_password.errors, e.message]
        return render_users(reset_form=form, reset_for=name, status=422)
    return redirect(USERS, code=303)


def day(value: str, field: str) -> tuple[datetime | None, str | None]:
    """The day ``value`` (YYYY-MM-DD, or a full ISO time) names, or a message for ``field``."""
    if not value:
        return None, None
    try:
        return datetime.fromisoformat(value), None
    except ValueError:
        return None, f"{field}: enter a date as YYYY-MM-DD."


@bp.get("/admin/audit")
def admin_audit() -> ResponseReturnValue:
    require_admin()
    page = page_number()
    filters = {key: (request.args.get(key) or "").strip()[:600]
               for key in ("actor", "action", "target", "outcome", "since", "until")}
    if filters["outcome"] not in OUTCOMES:
        filters["outcome"] = ""
    since, since_error = day(filters["since"], "Since")
    until, until_error = day(filters["until"], "Until")
    if until is not None and len(filters["until"]) <= len("YYYY-MM-DD"):
        until += timedelta(days=1)  # a day "until" names is included
    rows, total = state().audit.search(
        actor=filters["actor"] or None, action=filters["action"] or None,
        target=filters["target"] or None, since=since, until=until,
        outcome=filters["outcome"] or None,
        offset=(page - 1) * AUDIT_PER_PAGE, limit=AUDIT_PER_PAGE)
    query = {k: v for k, v in filters.items() if v}
    errors = {"since": since_error, "until": until_error}
    return render_template(
        "pages/admin_audit.html", rows=rows, total=total, page=page, filters=filters,
        pages=max(1, -(-total // AUDIT_PER_PAGE)), errors=errors, outcomes=OUTCOMES,
        refused=REFUSED_ACTIONS,
        link=lambda p: f"{PREFIX}/admin/audit?{urlencode({**query, 'page': p})}"), \
        422 if since_error or until_error else 200


@bp.get("/admin/repositories")
def admin_repositories() -> ResponseReturnValue:
    """Every repository, private ones included, with a name filter, a visibility filter and
    a choice of order; each links to its page, where an admin manages it."""
    require_admin()
    page = page_number()
    query = request.args.get("q", "").strip()[:MAX_QUERY]
    visibility = request.args.get("visibility", "")
    visibility = visibility if visibility in ("public", "private") else ""
    sort = "pushed" if request.args.get("sort") == "pushed" else "name"
    repos = state().repos
    found, total = repos.search(None, query, (page - 1) * REPOSITORIES_PER_PAGE,
                                REPOSITORIES_PER_PAGE, sort=sort, visibility=visibility or None)
    counts = {kind: repos.search(None, "", 0, 0, visibility=kind)[1]
              for kind in ("public", "private")}
    query_args = {k: v for k, v in (("q", query), ("visibility", visibility),
                                    ("sort", sort if sort != "name" else "")) if v}
    return render_template(
        "pages/admin_repositories.html", rows=rows_of(found), total=total, page=page,
        pages=max(1, -(-total // REPOSITORIES_PER_PAGE)), query=query, visibility=visibility,
        sort=sort, counts=counts,
        link=lambda p: f"{PREFIX}/admin/repositories?{urlencode({**query_args, 'page': p})}")

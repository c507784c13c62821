"""The organisation pages: the user's organisations (``/ui/orgs``, with a form to create one
when allowed) and each organisation's page (``/ui/orgs/ORG``): its repositories the user may
pull, owners and teams (members, permissions). Owners and admins change them there through the
``Organizations`` service, with the API's rules (``authsvc.web.api.orgs``): anyone who may not
see an organisation gets the 404 of one that does not exist, a member who may not change it a
403, and a refused or failed form changes nothing."""

from typing import Any

from flask import abort, current_app, render_template
from flask.typing import ResponseReturnValue
from werkzeug.utils import redirect

from authsvc.core.policy import (
    may_create_organization,
    may_manage_organization,
    may_see_organization,
)
from authsvc.db.accounts import validate_username
from authsvc.db.organizations import OrgView
from authsvc.errors import AuthsvcError, InvalidName
from authsvc.web.pages import bp
from authsvc.web.pages.cookie import PREFIX
from authsvc.web.pages.current import sign_in_required, state, subject
from authsvc.web.pages.org_forms import (
    PERMISSION_CHOICES,
    ConfirmForm,
    CreateOrgForm,
    PermissionForm,
    RemovePermissionForm,
    RemoveUserForm,
    TeamForm,
    UserNameForm,
)
from authsvc.web.pages.repositories import rows_of

#: Repositories an organisation's page lists.
REPOSITORIES_SHOWN = 100


def users_may_create() -> bool:
    return bool(current_app.config["ORG_CREATORS"] == "users")


def org_page(name: str) -> str:
    return f"{PREFIX}/orgs/{name}"


def visible(name: str) -> OrgView:
    """The organisation ``name`` if the signed-in user may see it; 404 (abort) otherwise, also
    when it does not exist."""
    orgs, who = state().orgs, subject()
    if not orgs.exists(name) or not may_see_organization(
            who, orgs.is_owner(name, who.name), orgs.is_member(name, who.name)):
        abort(404)
    return orgs.view(name)


def changeable(name: str) -> OrgView:
    """The organisation ``name`` if the signed-in user may change it: 404 when they may not
    see it, 403 (abort) when they may see but not change it."""
    org = visible(name)
    if not may_manage_organization(subject(), state().orgs.is_owner(name, subject().name)):
        abort(403)
    return org


def render_orgs(form: CreateOrgForm | None = None, status: int = 200) -> ResponseReturnValue:
    orgs, person = state().orgs, subject()
    names = orgs.names() if person.admin else orgs.names(member=person.name)
    rows = [orgs.view(n) for n in names]
    creator = may_create_organization(person, users_may_create())
    return render_template("pages/orgs.html", orgs=rows, creator=creator,
                           form=form or CreateOrgForm(formdata=None)), status


@bp.get("/orgs")
@sign_in_required
def organizations() -> ResponseReturnValue:
    return render_orgs()


@bp.post("/orgs")
@sign_in_required
def create_organization() -> ResponseReturnValue:
    who = subject()
    if not may_create_organization(who, users_may_create()):
        abort(403)
    form = CreateOrgForm()
    if not form.validate_on_submit():
        return render_orgs(form, 422)
    owners = form.owner_names()
    try:
        for owner in owners:
            validate_username(owner)
    except InvalidName as e:
        form.owners.errors = [*form.owners.errors, e.message]
        return render_orgs(form, 422)
    if not who.admin and who.name not in owners:
        owners.insert(0, who.name or "")
    try:
        org = state().orgs.create(form.name.data or "", owners)
    except AuthsvcError as e:
        form.name.errors = [*form.name.errors, e.message]
        return render_orgs(form, 422 if e.status < 500 else e.status)
    return redirect(org_page(org.name), code=303)


def render_org(org: OrgView, status: int = 200, problem: str = "",
               forms: dict[tuple[str, str], Any] | None = None) -> ResponseReturnValue:
    """The organisation's page; ``forms`` holds a refused form by (team or "", kind), shown
    with its errors where it was."""
    who = subject()
    manager = may_manage_organization(who, state().orgs.is_owner(org.name, who.name))
    repos, total = state().repos.search(who, f"{org.name}/", 0, REPOSITORIES_SHOWN,
                                        prefix=True, sort="pushed")
    forms = forms or {}

    def form(team: str, kind: str) -> Any:
        found = forms.get((team, kind))
        if found is not None:
            return found
        return {"owner": UserNameForm, "member": UserNameForm, "team": TeamForm,
                "permission": PermissionForm}[kind](formdata=None)

    return render_template(
        "pages/org.html", org=org, manager=manager, rows=rows_of(repos), total=total,
        problem=problem, form=form, remove_user=RemoveUserForm(formdata=None),
        remove_permission=RemovePermissionForm(formdata=None), choices=PERMISSION_CHOICES,
        shown=REPOSITORIES_SHOWN), status


@bp.get("/orgs/<name>")
@sign_in_required
def organization(name: str) -> ResponseReturnValue:
    return render_org(visible(name))


def done(name: str) -> ResponseReturnValue:
    """After a change: the organisation's page again (303, so a reload does not post again)."""
    return redirect(org_page(name), code=303)


def refused(org: OrgView, error: AuthsvcError, team: str, kind: str,
            form: Any, field: str) -> ResponseReturnValue:
    """The page again with ``form`` showing the service's message at ``field`` (a name) or
    at the top (anything else)."""
    if isinstance(error, InvalidName) or error.status == 400:
        getattr(form, field).errors = [*getattr(form, field).errors, error.message]
        return render_org(org, 422, forms={(team, kind): form})
    return render_org(org, error.status, error.message)


@bp.post("/orgs/<name>/-/owners")
@sign_in_required
def add_owner(name: str) -> ResponseReturnValue:
    org = changeable(name)
    form = UserNameForm()
    if not form.validate_on_submit():
        return render_org(org, 422, forms={("", "owner"): form})
    try:
        state().orgs.add_owner(name, form.username.data or "")
    except AuthsvcError as e:
        return refused(org, e, "", "owner", form, "username")
    return done(name)


@bp.post("/orgs/<name>/-/owners/remove")
@sign_in_required
def remove_owner(name: str) -> ResponseReturnValue:
    org = changeable(name)
    form = RemoveUserForm()
    if not form.validate_on_submit():
        return render_org(org, 422, "No user name given.")
    try:
        state().orgs.remove_owner(name, form.username.data or "")
    except AuthsvcError as e:
        return render_org(org, e.status, e.message)
    if not subject().admin and form.username.data == subject().name:
        return redirect(f"{PREFIX}/orgs", code=303)  # an owner who left may no longer see it
    return done(name)


@bp.post("/orgs/<name>/-/teams")
@sign_in_required
def create_team(name: str) -> ResponseReturnValue:
    org = changeable(name)
    form = TeamForm()
    if not form.validate_on_submit():
        return render_org(org, 422, forms={("", "team"): form})
    try:
        state().orgs.create_team(name, form.name.data or "", form.description.data or "")
    except AuthsvcError as e:
        return refused(org, e, "", "team", form, "name")
    return done(name)


@bp.post("/orgs/<name>/-/teams/<team>/delete")
@sign_in_required
def delete_team(name: str, team: str) -> ResponseReturnValue:
    org = changeable(name)
    try:
        state().orgs.delete_team(name, team)
    except AuthsvcError as e:
        return render_org(org, e.status, e.message)
    return done(name)


@bp.post("/orgs/<name>/-/teams/<team>/members")
@sign_in_required
def add_member(name: str, team: str) -> ResponseReturnValue:
    org = changeable(name)
    form = UserNameForm()
    if not form.validate_on_submit():
        return render_org(org, 422, forms={(team, "member"): form})
    try:
        state().orgs.add_member(name, team, form.username.data or "")
    except AuthsvcError as e:
        return refused(org, e, team, "member", form, "username")
    return done(name)


@bp.post("/orgs/<name>/-/teams/<team>/members/remove")
@sign_in_required
def remove_member(name: str, team: str) -> ResponseReturnValue:
    org = changeable(name)
    form = RemoveUserForm()
    if not form.validate_on_submit():
        return render_org(org, 422, "No user name given.")
    try:
        state().orgs.remove_member(name, team, form.username.data or "")
    except AuthsvcError as e:
        return render_org(org, e.status, e.message)
    return done(name)


@bp.post("/orgs/<name>/-/teams/<team>/permissions")
@sign_in_required
def set_permission(name: str, team: str) -> ResponseReturnValue:
    org = changeable(name)
    form = PermissionForm()
    if not form.validate_on_submit():
        return render_org(org, 422, forms={(team, "permission"): form})
    try:
        state().orgs.set_permission(name, team, (form.target.data or "").strip(),
                                    form.permission.data or "")
    except AuthsvcError as e:
        return refused(org, e, team, "permission", form, "target")
    return done(name)


@bp.post("/orgs/<name>/-/teams/<team>/permissions/remove")
@sign_in_required
def remove_permission(name: str, team: str) -> ResponseReturnValue:
    org = changeable(name)
    form = RemovePermissionForm()
    if not form.validate_on_submit():
        return render_org(org, 422, "No target given.")
    try:
        state().orgs.remove_permission(name, team, form.target.data or "")
    except AuthsvcError as e:
        return render_org(org, e.status, e.message)
    return done(name)


def render_delete(org: OrgView, form: ConfirmForm, status: int = 200,
                  problem: str = "") -> ResponseReturnValue:
    return render_template("pages/org_delete.html", org=org, form=form,
                           problem=problem), status


@bp.get("/orgs/<name>/-/delete")
@sign_in_required
def confirm_org_delete(name: str) -> ResponseReturnValue:
    return render_delete(changeable(name), ConfirmForm(formdata=None))


@bp.post("/orgs/<name>/-/delete")
@sign_in_required
def delete_organization(name: str) -> ResponseReturnValue:
    org = changeable(name)
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_delete(org, form, 422)
    if form.confirm.data != name:
        form.confirm.errors = [*form.confirm.errors,
                               f"Type {name} exactly to confirm; nothing was deleted."]
        return render_delete(org, form, 422)
    try:
        state().orgs.delete(name, force=bool(form.force.data))
    except AuthsvcError as e:
        return render_delete(org, form, e.status, e.message)
    return redirect(f"{PREFIX}/orgs", code=303)

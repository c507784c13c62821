"""A repository's grants and deletes on its page (``/ui/r/NAME``): owners and admins give and
remove grants; whoever holds ``delete`` deletes a tag (with the tags sharing its image) or the
whole repository after a confirmation page, through the same code as the API
(``authsvc.db.registry_sync``). Nothing changes on a refused or failed form."""

from dataclasses import dataclass
from typing import Any

from flask import abort, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.utils import redirect

from authsvc.core.policy import DELETE, held_actions, namespace_of
from authsvc.db.models import Repository
from authsvc.db.registry_sync import delete_images, delete_tag
from authsvc.errors import AuthsvcError, InvalidName
from authsvc.registry.references import validate_tag
from authsvc.web.pages import bp
from authsvc.web.pages.cookie import PREFIX
from authsvc.web.pages.current import manages, sign_in_required, state, subject
from authsvc.web.pages.repositories import (
    back_to,
    managed,
    named_repository,
    pullable,
    render_repository,
)
from authsvc.web.pages.repository_forms import DeleteForm, GrantForm, RevokeForm

NEEDS_REGISTRY = ("REGISTRY_URL is not set, so authsvc cannot delete images in the registry "
                  "(set REGISTRY_URL to the registry's https:// URL). Nothing was deleted.")


def may_delete(name: str) -> bool:
    return DELETE in held_actions(subject(), state().authorizer.facts(subject(), name))


def admin_context(repo: Repository, grant_form: GrantForm | None = None) -> dict[str, Any]:
    """What the repository page shows of grants and deletes, for the signed-in user."""
    manager = manages(repo.name)
    return {
        "grants": state().grants.list_grants(repo.name) if manager else [],
        "grant_form": grant_form or GrantForm(formdata=None),
        "revoke_form": RevokeForm(formdata=None),
        "deleter": may_delete(repo.name),
        "reach": reach_without_grants(repo.name),
    }


def reach_without_grants(name: str) -> str:
    """Who reaches ``name`` when it has no grants, as the grants section says it."""
    namespace = namespace_of(name)
    if namespace is None:
        return "admins"
    if state().orgs.exists(namespace):
        return f"the owners and teams of {namespace}, and admins,"
    return f"{namespace} and admins"


def render_with_grants(repo: Repository, grant_form: GrantForm, status: int,
                       problem: str = "") -> ResponseReturnValue:
    return render_repository(repo, status=status, problem=problem,
                             **admin_context(repo, grant_form))


@bp.post("/r/<path:name>/-/grants")
@named_repository
@sign_in_required
def give_grant(name: str) -> ResponseReturnValue:
    repo = managed(name)
    form = GrantForm()
    if not form.validate_on_submit():
        return render_with_grants(repo, form, 422)
    if not form.actions():
        form.pull.errors = ["Choose at least one of pull, push, delete."]
        return render_with_grants(repo, form, 422)
    try:
        state().grants.grant(form.username.data or "", name, form.actions())
    except InvalidName as e:
        form.username.errors = [*form.username.errors, e.message]
        return render_with_grants(repo, form, 422)
    except AuthsvcError as e:
        return render_with_grants(repo, form, e.status, e.message)
    return back_to(name)


@bp.post("/r/<path:name>/-/grants/remove")
@named_repository
@sign_in_required
def remove_grant(name: str) -> ResponseReturnValue:
    repo = managed(name)
    form = RevokeForm()
    if not form.validate_on_submit():
        return render_with_grants(repo, GrantForm(formdata=None), 422, "No user name given.")
    try:
        state().grants.revoke(form.username.data or "", name)
    except AuthsvcError as e:
        return render_with_grants(repo, GrantForm(formdata=None), e.status, e.message)
    return back_to(name)


@dataclass(frozen=True)
class Doomed:
    """What a delete takes away: the tags (empty for the whole repository) and the name to
    type to confirm."""

    tag: str
    tags: list[str]
    shared: list[str]
    digest: str
    expected: str


def deletable(name: str) -> Repository:
    """The record of ``name`` if the signed-in user may delete in it: 404 when they may not
    pull it, 403 when they may pull but not delete."""
    repo = pullable(subject(), name)
    if not may_delete(name):
        abort(403)
    return repo


def doomed(repo: Repository, tag: str) -> Doomed:
    """What deleting ``tag`` (or the repository, for ``""``) takes away, by authsvc's records;
    404 for a tag authsvc does not know."""
    tags = state().catalog.tags(repo.name)
    if not tag:
        return Doomed("", sorted(t.tag for t in tags), [], "", repo.name)
    try:
        validate_tag(tag)
    except InvalidName:
        abort(404)
    found = next((t for t in tags if t.tag == tag), None)
    if found is None:
        abort(404)
    shared = sorted(t.tag for t in tags if t.digest == found.digest and t.tag != tag)
    return Doomed(tag, [tag, *shared], shared, found.digest, tag)


def render_confirm(repo: Repository, what: Doomed, form: DeleteForm, status: int = 200,
                   problem: str = "") -> ResponseReturnValue:
    return render_template("pages/confirm_delete.html", repo=repo, what=what, form=form,
                           manager=manages(repo.name),
                           problem=problem), status


@bp.get("/r/<path:name>/-/delete")
@named_repository
@sign_in_required
def confirm_delete(name: str) -> ResponseReturnValue:
    repo = deletable(name)
    what = doomed(repo, request.args.get("tag", ""))
    return render_confirm(repo, what, DeleteForm(formdata=None, tag=what.tag))


@bp.post("/r/<path:name>/-/delete")
@named_repository
@sign_in_required
def delete(name: str) -> ResponseReturnValue:
    repo = deletable(name)
    form = DeleteForm()
    what = doomed(repo, form.tag.data or "")
    if not form.validate_on_submit():
        return render_confirm(repo, what, form, 422)
    if form.confirm.data != what.expected:
        form.confirm.errors = [*form.confirm.errors,
                               f"Type {what.expected} exactly to confirm; nothing was deleted."]
        return render_confirm(repo, what, form, 422)
    s = state()
    manager = manages(name)
    if not s.config.get("REGISTRY_URL"):
        if what.tag or s.catalog.tags(name) or not manager:
            return render_confirm(repo, what, form, 503, NEEDS_REGISTRY)
        s.repos.delete(name)  # as the API: a record without known tags, forgotten by a manager
        return redirect(PREFIX, code=303)
    try:
        client = s.registry_client("web")
        if what.tag:
            delete_tag(client, s.catalog, name, what.tag, with_shared_tags=True)
            return back_to(name)
        delete_images(client, s.catalog, name)
    except AuthsvcError as e:
        return render_confirm(repo, what, form, e.status,
                              f"{e.message} Nothing was deleted." if e.status >= 500
                              else e.message)
    if manager:
        s.repos.delete(name)
        return redirect(PREFIX, code=303)
    return back_to(name)

"""The repositories a user may pull: theirs first (``/ui``), a search over all of them
(``/ui/explore``), and each one's page (``/ui/r/NAME``). A repository the user may not pull is
404, exactly as one that does not exist."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.utils import redirect

from authsvc.core.policy import PULL, Subject, held_actions
from authsvc.db.catalog import TagRecord
from authsvc.db.models import Repository
from authsvc.db.repositories import validate_repository_path
from authsvc.errors import AuthsvcError, InvalidName
from authsvc.web.pages import bp
from authsvc.web.pages.cookie import PREFIX
from authsvc.web.pages.current import manages, sign_in_required, state, subject
from authsvc.web.pages.formatting import pull_line
from authsvc.web.pages.forms import CHOICES, DescriptionForm, VisibilityForm

R = TypeVar("R")
#: Repositories per page of Explore, and of each list on My repositories.
PER_PAGE = 25
MAX_QUERY = 255


@dataclass(frozen=True)
class RepoRow:
    """One repository as the lists show it."""

    name: str
    visibility: str
    description: str
    tags: int
    size: int
    pushed_at: datetime | None
    pull_count: int
    pull: str | None


def registry_host() -> str:
    return str(current_app.config["REGISTRY_HOST"])


def pull_tag(tags: Sequence[TagRecord]) -> str | None:
    """The tag a pull line names: the last pushed, else ``latest``, else the first by name."""
    if not tags:
        return None
    pushed = [t for t in tags if t.pushed_at is not None]
    if pushed:
        return max(pushed, key=lambda t: (t.pushed_at or datetime.min, t.tag)).tag
    return "latest" if any(t.tag == "latest" for t in tags) else tags[0].tag


def rows_of(repos: Sequence[Repository]) -> list[RepoRow]:
    """The rows of ``repos``: tag counts and sizes in one query, a pull line for each tagged
    one."""
    counts = state().catalog.tag_counts([r.id for r in repos])
    rows = []
    for repo in repos:
        count, size = counts.get(repo.id, (0, 0))
        tag = pull_tag(state().catalog.tags(repo.name)) if count else None
        rows.append(RepoRow(repo.name, repo.visibility, repo.description, count, size,
                            repo.pushed_at, repo.pull_count,
                            pull_line(registry_host(), repo.name, tag) if tag else None))
    return rows


@bp.get("")
@sign_in_required
def my_repositories() -> ResponseReturnValue:
    """The user's own repositories, then the others they may pull (the latest pushed)."""
    who = subject()
    own_prefix = f"{who.name}/"
    own, own_total = state().repos.search(who, own_prefix, 0, 100, prefix=True, sort="pushed")
    others, total = state().repos.search(who, "", 0, PER_PAGE + len(own), sort="pushed")
    others = [r for r in others if not r.name.startswith(own_prefix)][:PER_PAGE]
    return render_template(
        "pages/repositories.html", own=rows_of(own), own_total=own_total,
        others=rows_of(others), more=total - own_total > len(others),
        host=registry_host(), example=f"{registry_host()}/{who.name}/httpd:v1")


def page_number() -> int:
    """The ``page`` parameter (from 1); anything else is the first page."""
    value = request.args.get("page", "1")
    return int(value) if value.isdigit() and 0 < len(value) < 7 and int(value) > 0 else 1


@bp.get("/explore")
@sign_in_required
def explore() -> ResponseReturnValue:
    query = request.args.get("q", "").strip()[:MAX_QUERY]
    page = page_number()
    found, total = state().repos.search(subject(), query, (page - 1) * PER_PAGE, PER_PAGE)
    pages = max(1, -(-total // PER_PAGE))
    return render_template("pages/explore.html", rows=rows_of(found), query=query,
                           total=total, page=page, pages=pages)


def named_repository(view: Callable[[str], R]) -> Callable[[str], R]:
    """404 for a name that is no repository name, before anything else (signed in or not:
    a path of another shape is never redirected, see ``authsvc.app.never_redirect``)."""

    @wraps(view)
    def checked(name: str) -> R:
        try:
            validate_repository_path(name)
        except InvalidName:
            abort(404)
        return view(name)

    return checked


def pullable(who: Subject, name: str) -> Repository:
    """The record of ``name`` if ``who`` may pull it; 404 (abort) otherwise, also when it does
    not exist."""
    repo = state().repos.find(name)
    if repo is None or PULL not in held_actions(who, state().authorizer.facts(who, name)):
        abort(404)
    return repo


def render_repository(repo: Repository, visibility: VisibilityForm | None = None,
                      description: DescriptionForm | None = None, status: int = 200,
                      problem: str = "", **extra: Any) -> ResponseReturnValue:
    manager = manages(repo.name)
    tags = state().catalog.tags(repo.name)
    visibility = visibility or VisibilityForm(formdata=None, visibility=repo.visibility)
    description = description or DescriptionForm(formdata=None, description=repo.description)
    return render_template(
        "pages/repository.html", repo=repo, tags=tags, manager=manager, problem=problem,
        pulls={t.tag: pull_line(registry_host(), repo.name, t.tag) for t in tags},
        visibility_form=visibility, description_form=description, choices=CHOICES,
        **extra), status


@bp.get("/r/<path:name>")
@named_repository
@sign_in_required
def repository(name: str) -> ResponseReturnValue:
    # imported here: repository_admin imports this module
    from authsvc.web.pages.repository_admin import admin_context

    repo = pullable(subject(), name)
    return render_repository(repo, **admin_context(repo))


def managed(name: str) -> Repository:
    """The record of ``name`` if the signed-in user may change it: 404 when they may not even
    pull it, 403 (abort) when they may pull but not manage it."""
    repo = pullable(subject(), name)
    if not manages(name):
        abort(403)
    return repo


@bp.post("/r/<path:name>/-/visibility")
@named_repository
@sign_in_required
def change_visibility(name: str) -> ResponseReturnValue:
    repo = managed(name)
    form = VisibilityForm()
    if not form.validate_on_submit():
        return render_repository(repo, visibility=form, status=422)
    try:
        state().repos.set_visibility(name, form.visibility.data or "")
    except AuthsvcError as e:
        return render_repository(repo, visibility=form, status=e.status, problem=e.message)
    return back_to(name)


@bp.post("/r/<path:name>/-/description")
@named_repository
@sign_in_required
def change_description(name: str) -> ResponseReturnValue:
    repo = managed(name)
    form = DescriptionForm()
    if not form.validate_on_submit():
        return render_repository(repo, description=form, status=422)
    try:
        state().repos.set_description(name, form.description.data or "")
    except AuthsvcError as e:
        form.description.errors = [*form.description.errors, e.message]
        return render_repository(repo, description=form, status=422)
    return back_to(name)


def back_to(name: str) -> ResponseReturnValue:
    """After a change: the repository page again (303, so a reload does not post again)."""
    return redirect(f"{PREFIX}/r/{name}", code=303)

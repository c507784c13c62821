"""``/api/v1`` routes for repositories, their visibility, and grants on repositories and
namespaces. Who may act is decided by ``policy``; the views only parse and format."""

from collections.abc import Sequence
from typing import Any

from flask import Response, jsonify, request

from authsvc.core.policy import (
    PULL,
    held_actions,
    may_create_repository,
    may_manage_namespace,
    may_manage_repository,
    may_read_grants,
)
from authsvc.db.catalog import TagRecord
from authsvc.db.grants import GrantRow, validate_target
from authsvc.db.models import Repository
from authsvc.db.repositories import (
    validate_description,
    validate_repository_path,
    validate_visibility,
)
from authsvc.errors import InvalidRequest, NotFound
from authsvc.web.api.admin import (
    actor,
    bp,
    created,
    json_body,
    no_content,
    page_args,
    paged,
    require,
    state,
    string_list,
    timestamp,
)


def repository_json(repo: Repository, counts: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """A repository with what the registry holds of it: ``counts`` is its number of tags and
    their total size."""
    return {"name": repo.name, "visibility": repo.visibility,
            "description": repo.description, "created_at": timestamp(repo.created_at),
            "pushed_at": timestamp(repo.pushed_at), "pull_count": repo.pull_count,
            "last_pulled_at": timestamp(repo.last_pulled_at), "tag_count": counts[0],
            "size": counts[1]}


def with_counts(repos: Sequence[Repository]) -> list[dict[str, Any]]:
    counts = state().catalog.tag_counts([r.id for r in repos])
    return [repository_json(r, counts.get(r.id, (0, 0))) for r in repos]


def tag_json(tag: TagRecord) -> dict[str, Any]:
    return {"name": tag.tag, "digest": tag.digest, "media_type": tag.media_type,
            "size": tag.size, "pushed_at": timestamp(tag.pushed_at),
            "pushed_by": tag.pushed_by}


def pullable(name: str) -> Repository:
    """The record of ``name`` if the caller may pull it; raises InvalidName, NotFound (also
    when it exists but the caller may not pull it: no answer tells it exists)."""
    validate_repository_path(name)
    repo = state().repos.find(name)
    facts = state().authorizer.facts(actor(), name)
    if repo is None or PULL not in held_actions(actor(), facts):
        raise NotFound(f"repository {name[:300]!r} does not exist")
    return repo


def grant_json(row: GrantRow) -> dict[str, Any]:
    return {"username": row.username, "target": row.target, "actions": list(row.actions)}


def require_repository_manager(name: str) -> None:
    """Raises InvalidName (422) for a bad name, Forbidden unless the caller may manage it."""
    validate_repository_path(name)
    require(may_manage_repository(actor(), state().authorizer.facts(actor(), name)),
            f"only the owner of the namespace (a user, an organisation's owners), a team with "
            f"admin on it, or an admin, logged in with a password (not an access token), may "
            f"change {name[:300]!r} or its grants")


def require_namespace_manager(namespace: str) -> None:
    """Raises InvalidName (422) for a bad namespace, Forbidden unless the caller may manage
    its grants."""
    validate_target(f"{namespace}/*")
    require(may_manage_namespace(actor(), namespace,
                                 state().orgs.is_owner(namespace, actor().name)),
            f"only {namespace!r} (or the owners of the organisation {namespace!r}) or an admin, "
            f"logged in with a password (not an access token), may change grants on the "
            f"namespace {namespace!r}")


def require_grant_reader(target: str) -> None:
    """Raises InvalidName (422) for a bad target, Forbidden unless the caller may read its
    grants."""
    validate_target(target)
    require(may_read_grants(actor(), state().authorizer.facts(actor(), target)),
            f"only the owner of the namespace or an admin may read the grants on {target!r}")


@bp.post("/repositories")
def create_repository() -> tuple[Response, int]:
    body = json_body({"name": str, "visibility": str, "description": str}, required=("name",))
    name, visibility = body["name"], body.get("visibility")
    validate_repository_path(name)
    repos = state().repos
    if visibility is not None:
        validate_visibility(visibility)
    require(may_create_repository(actor(), state().authorizer.facts(actor(), name),
                                  visibility in (None, repos.default_visibility)),
            f"only the owner of the namespace or an admin may add {name[:300]!r}; an access "
            "token only where it may push, with the default visibility")
    if body.get("description"):
        validate_description(body["description"])
        require(actor().limit is None, "setting a description needs a password login")
    repo = repos.create(name, visibility)
    if body.get("description"):
        repo = repos.set_description(name, body["description"])
    return created(repository_json(repo))


SORTS = ("name", "pushed")
MATCHES = ("substring", "prefix")


@bp.get("/repositories")
def list_repositories() -> Response:
    """What the caller may pull: ``q`` (in the name; ``match=prefix`` for names starting with
    it), ``sort=name|pushed``, paged."""
    page, per_page = page_args()
    query = request.args.get("q", "")[:255]
    sort, match = request.args.get("sort", "name"), request.args.get("match", "substring")
    if sort not in SORTS or match not in MATCHES:
        raise InvalidRequest("sort must be name or pushed, and match substring or prefix")
    repos, total = state().repos.search(actor(), query, (page - 1) * per_page, per_page,
                                        prefix=match == "prefix", sort=sort)
    return paged(with_counts(repos), total, page, per_page)


@bp.get("/repositories/<path:name>")
def get_repository(name: str) -> Response:
    repo = pullable(name)
    tags = state().catalog.tags(name)
    body = repository_json(repo, (len(tags), sum(t.size for t in tags)))
    return jsonify({**body, "tags": [tag_json(t) for t in tags]})


@bp.get("/repositories/<path:name>/-/tags")
def list_tags(name: str) -> Response:
    pullable(name)
    return jsonify(items=[tag_json(t) for t in state().catalog.tags(name)])


@bp.patch("/repositories/<path:name>")
def update_repository(name: str) -> Response:
    """Change the visibility and/or the description (owners and admins)."""
    require_repository_manager(name)
    body = json_body({"visibility": str, "description": str})
    if not body:
        raise InvalidRequest("give visibility or description")
    repos = state().repos
    if "visibility" in body:
        validate_visibility(body["visibility"])
    repos.get(name)
    if "description" in body:
        repos.set_description(name, body["description"])
    repo = (repos.set_visibility(name, body["visibility"]) if "visibility" in body
            else repos.get(name))
    return jsonify(with_counts([repo])[0])


def _put_grant(target: str, username: str) -> Response:
    body = json_body({"actions": list}, required=("actions",))
    return jsonify(grant_json(state().grants.grant(username, target,
                                                  string_list(body, "actions"))))


# Grants on a repository live under ``/-/``: ``-`` is no repository path component, so no
# repository name can take these routes, and ``…/grants`` with no ``-`` names a repository.

@bp.get("/repositories/<path:name>/-/grants")
def list_repository_grants(name: str) -> Response:
    require_grant_reader(name)
    return jsonify(items=[grant_json(g) for g in state().grants.list_grants(name)])


@bp.put("/repositories/<path:name>/-/grants/<username>")
def put_repository_grant(name: str, username: str) -> Response:
    require_repository_manager(name)
    return _put_grant(name, username)


@bp.delete("/repositories/<path:name>/-/grants/<username>")
def delete_repository_grant(name: str, username: str) -> tuple[str, int]:
    require_repository_manager(name)
    state().grants.revoke(username, name)
    return no_content()


@bp.get("/namespaces/<namespace>/grants")
def list_namespace_grants(namespace: str) -> Response:
    require_grant_reader(f"{namespace}/*")
    return jsonify(items=[grant_json(g) for g in state().grants.list_grants(f"{namespace}/*")])


@bp.put("/namespaces/<namespace>/grants/<username>")
def put_namespace_grant(namespace: str, username: str) -> Response:
    require_namespace_manager(namespace)
    return _put_grant(f"{namespace}/*", username)


@bp.delete("/namespaces/<namespace>/grants/<username>")
def delete_namespace_grant(namespace: str, username: str) -> tuple[str, int]:
    require_namespace_manager(namespace)
    state().grants.revoke(username, f"{namespace}/*")
    return no_content()

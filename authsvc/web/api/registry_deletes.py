"""``/api/v1`` deletes that reach into the registry: one tag, or a whole repository.

The caller must hold ``delete`` on the repository (owners, admins, a ``delete`` grant; an access
token only with the ``delete`` permission and within its limit); one who may not even pull it
gets 404, as if it did not exist. Deleting a repository deletes its images in the registry and
its tag records; its record, visibility and grants go too only when the caller may manage it
(the namespace owner or an admin, logged in with a password).
"""

from typing import TYPE_CHECKING

from flask import request

from authsvc.core.policy import DELETE, PULL, held_actions, may_manage_repository
from authsvc.db.registry_sync import delete_images, delete_tag
from authsvc.db.repositories import validate_repository_path
from authsvc.errors import InvalidRequest, NotFound, RegistryNotConfigured
from authsvc.registry.references import validate_tag
from authsvc.web.api.admin import actor, bp, no_content, require, state

if TYPE_CHECKING:  # the client (and requests) is imported when a delete needs it
    from authsvc.registry.client import RegistryClient

NEEDS_REGISTRY = ("REGISTRY_URL is not set, so authsvc cannot delete images in the registry "
                  "(set REGISTRY_URL to the registry's https:// URL)")


def require_deleter(name: str) -> None:
    """Raises InvalidName (422) for a bad name, NotFound when the caller may not pull ``name``,
    Forbidden when it may pull but not delete."""
    validate_repository_path(name)
    held = held_actions(actor(), state().authorizer.facts(actor(), name))
    if PULL not in held:
        raise NotFound(f"repository {name[:300]!r} does not exist")
    require(DELETE in held, f"deleting images of {name!r} needs the delete right on it (owners, "
                            "admins, a delete grant; an access token with the delete permission)")


def registry_client() -> "RegistryClient":
    """The registry client of API deletes; raises RegistryNotConfigured (503)."""
    if not state().config.get("REGISTRY_URL"):
        raise RegistryNotConfigured(NEEDS_REGISTRY)
    return state().registry_client("api")


def flag(name: str) -> bool:
    """A boolean query parameter (absent: false); raises InvalidRequest (422)."""
    value = request.args.get(name, "false").lower()
    if value not in ("true", "1", "false", "0"):
        raise InvalidRequest(f"{name} must be true or false")
    return value in ("true", "1")


@bp.delete("/repositories/<path:name>/-/tags/<tag>")
def delete_repository_tag(name: str, tag: str) -> tuple[str, int]:
    """Delete ``name:tag`` in the registry (by its digest) and in authsvc: 409 while other tags
    share the digest, unless ``?with_shared_tags=true``; 404 when the registry lacks it."""
    require_deleter(name)
    validate_tag(tag)
    shared = flag("with_shared_tags")
    delete_tag(registry_client(), state().catalog, name, tag, with_shared_tags=shared)
    return no_content()


@bp.delete("/repositories/<path:name>")
def delete_repository(name: str) -> tuple[str, int]:
    """Delete the images of ``name`` in the registry and its tag records; a manager's delete
    also forgets the record and its grants. Without REGISTRY_URL only a repository whose tags
    authsvc does not know can be deleted, by a manager (its record: 503 otherwise)."""
    require_deleter(name)
    s = state()
    manages = may_manage_repository(actor(), s.authorizer.facts(actor(), name))
    record = s.repos.find(name)
    deleted: list[str] = []
    if s.config.get("REGISTRY_URL"):
        deleted = delete_images(registry_client(), s.catalog, name)
    elif s.catalog.tags(name) or not manages:
        raise RegistryNotConfigured(NEEDS_REGISTRY)
    if record is None and not deleted:
        raise NotFound(f"repository {name[:300]!r} does not exist")
    if manages and record is not None:
        s.repos.delete(name)
    return no_content()

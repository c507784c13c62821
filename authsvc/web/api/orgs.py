"""``/api/v1`` routes for organisations, their owners and their teams.

Who may act is decided by ``policy``: an organisation is seen by its owners, its teams'
members and admins, and changed by its owners and admins logged in with a password. Anyone
else gets the answer a missing organisation gets (404), so no answer tells which exist; a
caller who may see it but not change it gets 403. The views only parse and format; the
``Organizations`` service validates, audits and raises.
"""

from typing import Any

from flask import Response, current_app, jsonify, request

from authsvc.core.policy import (
    may_create_organization,
    may_manage_organization,
    may_see_organization,
)
from authsvc.db.organizations import OrgView, TeamView
from authsvc.errors import InvalidRequest, NotFound
from authsvc.web.api.admin import (
    actor,
    bp,
    created,
    json_body,
    no_content,
    require,
    state,
    string_list,
)
from authsvc.web.api.registry_deletes import flag


def team_json(team: TeamView) -> dict[str, Any]:
    return {"name": team.name, "description": team.description, "members": list(team.members),
            "permissions": [{"target": t, "permission": p} for t, p in team.permissions]}


def org_json(org: OrgView) -> dict[str, Any]:
    return {"name": org.name, "owners": list(org.owners),
            "teams": [team_json(t) for t in org.teams], "repositories": org.repositories}


def require_seer(org: str) -> bool:
    """Raises NotFound, as for a missing organisation, unless the caller may see ``org``;
    returns whether the caller owns it."""
    orgs, me = state().orgs, actor()
    owner = orgs.is_owner(org, me.name)
    if not may_see_organization(me, owner, owner or orgs.is_member(org, me.name)):
        raise NotFound(f"organisation {org[:300]!r} does not exist")
    return owner


def require_org_manager(org: str) -> None:
    """Raises NotFound unless the caller may see ``org``, Forbidden unless they may change
    it."""
    owner = require_seer(org)
    require(may_manage_organization(actor(), owner),
            f"only the owners of the organisation {org!r} or an admin, logged in with a "
            "password (not an access token), may change it")


@bp.get("/orgs")
def list_orgs() -> Response:
    """Every organisation for admins; the others see those they own or are in a team of."""
    me = actor()
    names = state().orgs.names(None if me.admin else me.name)
    return jsonify(orgs=[{"name": n} for n in names])


@bp.post("/orgs")
def create_org() -> tuple[Response, int]:
    """An admin names the owners; any other creator (ORG_CREATORS=users) is one of them."""
    me = actor()
    require(may_create_organization(me, current_app.config["ORG_CREATORS"] == "users"),
            "only an admin (or any user, when ORG_CREATORS is users), logged in with a "
            "password (not an access token), may create an organisation")
    body = json_body({"name": str, "owners": list}, required=("name",))
    owners = string_list(body, "owners")
    if not me.admin and me.name is not None:
        owners = [me.name, *owners]
    return created(org_json(state().orgs.create(body["name"], owners)))


@bp.get("/orgs/<org>")
def get_org(org: str) -> Response:
    require_seer(org)
    return jsonify(org_json(state().orgs.view(org)))


@bp.delete("/orgs/<org>")
def delete_org(org: str) -> tuple[str, int]:
    """409 while repositories are recorded in its namespace, unless ``?force=true``."""
    require_org_manager(org)
    state().orgs.delete(org, force=flag("force"))
    return no_content()


@bp.put("/orgs/<org>/owners/<username>")
def put_owner(org: str, username: str) -> tuple[str, int]:
    require_org_manager(org)
    state().orgs.add_owner(org, username)
    return no_content()


@bp.delete("/orgs/<org>/owners/<username>")
def delete_owner(org: str, username: str) -> tuple[str, int]:
    """409 for the last owner."""
    require_org_manager(org)
    state().orgs.remove_owner(org, username)
    return no_content()


@bp.post("/orgs/<org>/teams")
def create_team(org: str) -> tuple[Response, int]:
    require_org_manager(org)
    body = json_body({"name": str, "description": str}, required=("name",))
    team = state().orgs.create_team(org, body["name"], body.get("description", ""))
    return created(team_json(team))


@bp.get("/orgs/<org>/teams/<team>")
def get_team(org: str, team: str) -> Response:
    require_seer(org)
    return jsonify(team_json(state().orgs.team(org, team)))


@bp.delete("/orgs/<org>/teams/<team>")
def delete_team(org: str, team: str) -> tuple[str, int]:
    require_org_manager(org)
    state().orgs.delete_team(org, team)
    return no_content()


@bp.put("/orgs/<org>/teams/<team>/members/<username>")
def put_member(org: str, team: str, username: str) -> tuple[str, int]:
    require_org_manager(org)
    state().orgs.add_member(org, team, username)
    return no_content()


@bp.delete("/orgs/<org>/teams/<team>/members/<username>")
def delete_member(org: str, team: str, username: str) -> tuple[str, int]:
    require_org_manager(org)
    state().orgs.remove_member(org, team, username)
    return no_content()


@bp.put("/orgs/<org>/teams/<team>/permissions")
def put_permission(org: str, team: str) -> Response:
    """Give the team ``permission`` on ``target`` (``org/*`` or ``org/repo``), replacing what
    it had there; answers the team."""
    require_org_manager(org)
    body = json_body({"target": str, "permission": str}, required=("target", "permission"))
    orgs = state().orgs
    orgs.set_permission(org, team, body["target"], body["permission"])
    return jsonify(team_json(orgs.team(org, team)))


@bp.delete("/orgs/<org>/teams/<team>/permissions")
def delete_permission(org: str, team: str) -> tuple[str, int]:
    """``?target=org/*`` or ``?target=org/repo``."""
    require_org_manager(org)
    target = request.args.get("target")
    if not target:
        raise InvalidRequest("name the permission's target: ?target=ORG/* or ?target=ORG/REPO")
    state().orgs.remove_permission(org, team, target)
    return no_content()

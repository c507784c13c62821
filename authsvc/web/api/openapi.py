"""``GET /api/v1/openapi.json``: the OpenAPI 3 description of the admin API."""

from typing import Any

from flask import Response, jsonify

from authsvc.web.api.admin import bp

STRING = {"type": "string"}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
TIME = {"type": "string", "format": "date-time"}
COUNT = {"type": "integer", "minimum": 0}
DESCRIPTION = {"type": "string", "maxLength": 1000}
ACTIONS = {"type": "array", "items": {"type": "string", "enum": ["pull", "push", "delete", "*"]}}
#: A user, organisation or team name: one repository path component.
NAME = {"type": "string", "pattern": r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$",
        "maxLength": 255}
NAMES = {"type": "array", "items": NAME}
TEAM_PERMISSION = {"enum": ["read", "write", "admin"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: dict[str, Any], required: list[str] | None = None,
         extra: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "additionalProperties": extra}
    if required:
        schema["required"] = required
    return schema


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"description": "error", **_json(_ref("Errors"))} for s in statuses}


def _op(summary: str, ok: int, ok_schema: dict[str, Any] | None, errors: tuple[int, ...],
        body: dict[str, Any] | None = None, params: list[dict[str, Any]] | None = None,
        ) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "success"}
    if ok_schema is not None:
        success.update(_json(ok_schema))
    operation: dict[str, Any] = {"summary": summary,
                                 # 404: also for any path the router cannot match
                                 "responses": {str(ok): success, **_errors(401, 404, *errors)}}
    if body is not None:
        operation["requestBody"] = {"required": True, **_json(body)}
    if params:
        operation["parameters"] = params
    return operation


def _path_param(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or STRING}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


PAGING = [_query("page", {"type": "integer", "minimum": 1, "maximum": 1000000}),
          _query("per_page", {"type": "integer", "minimum": 1, "maximum": 100})]

SCHEMAS: dict[str, Any] = {
    "Errors": _obj({"errors": {"type": "array", "items": _obj(
        {"code": STRING, "message": STRING}, ["code", "message"])}}, ["errors"]),
    "User": _obj({"username": STRING, "admin": {"type": "boolean"},
                  "disabled": {"type": "boolean"}, "robot": {"type": "boolean"},
                  "created_at": TIME, "authenticated_with": {"enum": ["password", "access_token"]}},
                 ["username", "admin", "disabled", "robot", "created_at"]),
    "NewUser": _obj({"username": STRING, "password": STRING, "admin": {"type": "boolean"},
                     "robot": {"type": "boolean"}}, ["username"]),
    "UserChange": _obj({"password": STRING, "admin": {"type": "boolean"},
                        "disabled": {"type": "boolean"}}),
    "Repository": _obj({"name": STRING, "visibility": {"enum": ["public", "private"]},
                        "description": STRING, "created_at": TIME, "pushed_at": NULLABLE_TIME,
                        "pull_count": COUNT, "last_pulled_at": NULLABLE_TIME,
                        "tag_count": COUNT, "size": COUNT},
                       ["name", "visibility", "description", "created_at", "pushed_at",
                        "pull_count", "last_pulled_at", "tag_count", "size"]),
    "RepositoryWithTags": _obj({"name": STRING, "visibility": {"enum": ["public", "private"]},
                                "description": STRING, "created_at": TIME,
                                "pushed_at": NULLABLE_TIME, "pull_count": COUNT,
                                "last_pulled_at": NULLABLE_TIME, "tag_count": COUNT,
                                "size": COUNT, "tags": {"type": "array", "items": _ref("Tag")}},
                               ["name", "visibility", "tags"]),
    "Tag": _obj({"name": STRING, "digest": STRING, "media_type": STRING, "size": COUNT,
                 "pushed_at": NULLABLE_TIME, "pushed_by": STRING},
                ["name", "digest", "media_type", "size", "pushed_at", "pushed_by"]),
    "NewRepository": _obj({"name": STRING, "visibility": {"enum": ["public", "private"]},
                           "description": DESCRIPTION}, ["name"]),
    "RepositoryChange": _obj({"visibility": {"enum": ["public", "private"]},
                              "description": DESCRIPTION}),
    "EventsRecorded": _obj({"recorded": COUNT, "duplicates": COUNT, "ignored": COUNT,
                            "rejected": {"type": "array", "items": STRING}},
                           ["recorded", "duplicates", "ignored", "rejected"]),
    "Grant": _obj({"username": STRING, "target": STRING, "actions": ACTIONS},
                  ["username", "target", "actions"]),
    "GrantChange": _obj({"actions": ACTIONS}, ["actions"]),
    "AccessToken": _obj({"id": {"type": "integer"}, "name": STRING,
                         "permission": {"enum": ["read", "write", "delete"]},
                         "repositories": {"type": "array", "items": STRING},
                         "created_at": TIME, "expires_at": NULLABLE_TIME,
                         "last_used_at": NULLABLE_TIME, "token": STRING},
                        ["id", "name", "permission", "repositories", "created_at"]),
    "NewAccessToken": _obj({"name": STRING, "permission": {"enum": ["read", "write", "delete"]},
                            "expires_in_days": {"type": "integer"},
                            "repositories": {"type": "array", "items": STRING}},
                           ["name", "permission"]),
    "AuditEvent": _obj({"id": {"type": "integer"}, "at": TIME, "action": STRING, "actor": STRING,
                        "target": STRING, "remote_addr": STRING, "client_id": STRING,
                        "service": STRING, "requested": STRING, "granted": STRING,
                        "detail": STRING},
                       ["id", "at", "action", "actor", "target"]),
    "RefreshToken": _obj({"id": {"type": "integer"}, "service": STRING, "client_id": STRING,
                          "created_at": TIME, "expires_at": TIME,
                          "last_used_at": NULLABLE_TIME},
                         ["id", "service", "client_id", "created_at", "expires_at"]),
    "OrgList": _obj({"orgs": {"type": "array", "items": _obj({"name": NAME}, ["name"])}},
                    ["orgs"]),
    "Org": _obj({"name": NAME, "owners": NAMES, "teams": {"type": "array", "items": _ref("Team")},
                 "repositories": COUNT}, ["name", "owners", "teams", "repositories"]),
    "NewOrg": {**_obj({"name": NAME, "owners": NAMES}, ["name"]),
               "example": {"name": "acme", "owners": ["alice"]}},
    "Team": _obj({"name": NAME, "description": DESCRIPTION, "members": NAMES,
                  "permissions": {"type": "array", "items": _ref("TeamPermission")}},
                 ["name", "description", "members", "permissions"]),
    "NewTeam": {**_obj({"name": NAME, "description": DESCRIPTION}, ["name"]),
                "example": {"name": "dev", "description": "developers"}},
    "TeamPermission": {**_obj({"target": STRING, "permission": TEAM_PERMISSION},
                              ["target", "permission"]),
                       "example": {"target": "acme/*", "permission": "write"}},
}


def _page_of(name: str) -> dict[str, Any]:
    return _obj({"items": {"type": "array", "items": _ref(name)},
                 "total": {"type": "integer"}, "page": {"type": "integer"},
                 "per_page": {"type": "integer"}}, ["items", "total", "page", "per_page"])


def _list_of(name: str) -> dict[str, Any]:
    return _obj({"items": {"type": "array", "items": _ref(name)}}, ["items"])


USER = [_path_param("name")]
REPO = [_path_param("name")]
NAMESPACE = [_path_param("namespace")]
TOKEN_ID = _path_param("id", {"type": "integer"})
ORG = [{**_path_param("org"), "example": "acme"}]
TEAM = [*ORG, {**_path_param("team"), "example": "dev"}]
ORG_USER = [*ORG, {**_path_param("username"), "example": "bob"}]
TEAM_USER = [*TEAM, {**_path_param("username"), "example": "bob"}]

PATHS: dict[str, Any] = {
    "/me": {"get": _op("The caller", 200, _ref("User"), ())},
    "/audit": {"get": _op("The audit trail, newest first (admins)", 200, _page_of("AuditEvent"),
                          (403, 422), params=[*PAGING, _query("actor", STRING),
                                              _query("action", STRING), _query("target", STRING),
                                              _query("since", TIME)])},
    "/users": {
        "get": _op("List users (admins)", 200, _page_of("User"), (403, 422), params=PAGING),
        "post": _op("Create a user (admins)", 201, _ref("User"), (400, 403, 409, 422),
                    body=_ref("NewUser")),
    },
    "/users/{name}": {
        "get": _op("One user (admins, or the user)", 200, _ref("User"), (403, 404), params=USER),
        "patch": _op("Change password (self) or flags (admins)", 200, _ref("User"),
                     (400, 403, 404, 409, 422), body=_ref("UserChange"), params=USER),
        "delete": _op("Delete a user, the grants held by that name, and the grants and "
                      "repository records in their namespace (admins)", 204, None,
                      (403, 404, 409), params=USER),
    },
    "/users/{name}/tokens": {
        "get": _op("List access tokens (never their secrets)", 200, _list_of("AccessToken"),
                   (403, 404), params=USER),
        "post": _op("Create an access token; the secret is shown once", 201,
                    _ref("AccessToken"), (400, 403, 404, 422), body=_ref("NewAccessToken"),
                    params=USER),
    },
    "/users/{name}/tokens/{id}": {
        "delete": _op("Revoke an access token", 204, None, (403, 404),
                      params=[*USER, TOKEN_ID]),
    },
    "/users/{name}/refresh-tokens": {
        "get": _op("List refresh tokens", 200, _list_of("RefreshToken"), (403, 404),
                   params=USER),
    },
    "/users/{name}/refresh-tokens/{id}": {
        "delete": _op("Revoke a refresh token", 204, None, (403, 404),
                      params=[*USER, TOKEN_ID]),
    },
    "/repositories": {
        "get": _op("Repositories the caller may pull", 200, _page_of("Repository"), (422,),
                   params=[*PAGING, _query("q", {"type": "string", "maxLength": 255}),
                           _query("match", {"enum": ["substring", "prefix"]}),
                           _query("sort", {"enum": ["name", "pushed"]})]),
        "post": _op("Create a repository (namespace owner or admin; an access token only "
                    "where it may push, with the default visibility)", 201, _ref("Repository"),
                    (400, 403, 409, 422), body=_ref("NewRepository")),
    },
    "/repositories/{name}": {
        "get": _op("One repository and its tags (if the caller may pull it)", 200,
                   _ref("RepositoryWithTags"), (404, 422), params=REPO),
        "patch": _op("Set visibility and/or description (password login)", 200,
                     _ref("Repository"), (400, 403, 404, 422), body=_ref("RepositoryChange"),
                     params=REPO),
        "delete": _op("Delete a repository's images in the registry and its tags; the owner "
                      "or an admin (password login) also forgets the record and its grants",
                      204, None, (403, 404, 422, 502, 503), params=REPO),
    },
    "/repositories/{name}/-/tags": {
        "get": _op("The tags of a repository the caller may pull", 200, _list_of("Tag"),
                   (404, 422), params=REPO),
    },
    "/repositories/{name}/-/tags/{tag}": {
        "delete": _op("Delete a tag's manifest in the registry (a delete right), refused "
                      "when other tags share it unless with_shared_tags=true", 204, None,
                      (403, 404, 409, 422, 502, 503),
                      params=[*REPO, _path_param("tag"),
                              _query("with_shared_tags", {"enum": ["true", "false"]})]),
    },
    "/registry/events": {
        "post": {
            "summary": "The registry's notifications (Authorization: Bearer <the "
                       "notification secret>)",
            "security": [{"notification_secret": []}],
            "requestBody": {"required": True, "content": {
                "application/vnd.docker.distribution.events.v2+json": {"schema": _obj(
                    {"events": {"type": "array", "items": {"type": "object"}}},
                    ["events"], extra=True)}}},
            "responses": {"200": {"description": "stored", **_json(_ref("EventsRecorded"))},
                          **_errors(400, 401, 404, 413, 503)},
        },
    },
    # ``-`` is no repository path component: no repository name can take these routes
    "/repositories/{name}/-/grants": {
        "get": _op("Grants on a repository (its owner or an admin)", 200, _list_of("Grant"),
                   (403, 422), params=REPO),
    },
    "/repositories/{name}/-/grants/{username}": {
        "put": _op("Grant a user name actions on a repository, whether or not an account of "
                   "that name exists (password login)", 200, _ref("Grant"),
                   (400, 403, 422), body=_ref("GrantChange"),
                   params=[*REPO, _path_param("username")]),
        "delete": _op("Revoke a grant (password login)", 204, None, (403, 404, 422),
                      params=[*REPO, _path_param("username")]),
    },
    "/namespaces/{namespace}/grants": {
        "get": _op("Grants on a namespace (its user or an admin)", 200, _list_of("Grant"),
                   (403, 422), params=NAMESPACE),
    },
    "/namespaces/{namespace}/grants/{username}": {
        "put": _op("Grant a user name actions on a whole namespace (password login)", 200,
                   _ref("Grant"), (400, 403, 422), body=_ref("GrantChange"),
                   params=[*NAMESPACE, _path_param("username")]),
        "delete": _op("Revoke a namespace grant", 204, None, (403, 404, 422),
                      params=[*NAMESPACE, _path_param("username")]),
    },
    # Organisations: 404 for anyone who may not see one (its owners, its teams' members and
    # admins see it), 403 for those who may see it but not change it (only owners and admins,
    # logged in with a password, change it).
    "/orgs": {
        "get": _op("Organisations: every one for admins, those the caller owns or is in a team "
                   "of for others", 200, _ref("OrgList"), ()),
        "post": _op("Create an organisation (admins; any user when ORG_CREATORS is users, who "
                    "becomes an owner)", 201, _ref("Org"), (400, 403, 409, 422),
                    body=_ref("NewOrg")),
    },
    "/orgs/{org}": {
        "get": _op("One organisation: owners, teams, number of repositories", 200, _ref("Org"),
                   (), params=ORG),
        "delete": _op("Delete an organisation and its teams; refused while it holds repository "
                      "records unless force=true (which forgets them and their grants)", 204,
                      None, (403, 409, 422),
                      params=[*ORG, _query("force", {"enum": ["true", "false"]})]),
    },
    "/orgs/{org}/owners/{username}": {
        "put": _op("Add an owner", 204, None, (403, 409, 422), params=ORG_USER),
        "delete": _op("Remove an owner; never the last one", 204, None, (403, 409),
                      params=ORG_USER),
    },
    "/orgs/{org}/teams": {
        "post": _op("Create a team", 201, _ref("Team"), (400, 403, 409, 422),
                    body=_ref("NewTeam"), params=ORG),
    },
    "/orgs/{org}/teams/{team}": {
        "get": _op("One team: members and permissions", 200, _ref("Team"), (), params=TEAM),
        "delete": _op("Delete a team", 204, None, (403,), params=TEAM),
    },
    "/orgs/{org}/teams/{team}/members/{username}": {
        "put": _op("Add a member (a user name; robots too)", 204, None, (403, 409, 422),
                   params=TEAM_USER),
        "delete": _op("Remove a member", 204, None, (403,), params=TEAM_USER),
    },
    "/orgs/{org}/teams/{team}/permissions": {
        "put": _op("Give the team read, write or admin on ORG/* or ORG/REPO, replacing what it "
                   "had there", 200, _ref("Team"), (400, 403, 409, 422),
                   body=_ref("TeamPermission"), params=TEAM),
        "delete": _op("Take the team's permission on a target", 204, None, (403, 422),
                      params=[*TEAM, {"name": "target", "in": "query", "required": True,
                                      "schema": STRING, "example": "acme/*"}]),
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "authsvc admin API", "version": "1"},
    "servers": [{"url": "/api/v1"}],
    "security": [{"basic": []}, {"bearer": []}],
    "components": {
        "securitySchemes": {
            "basic": {"type": "http", "scheme": "basic",
                      "description": "user name and password, or user name and access token"},
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "an access token (authsvc_pat_…)"},
            "notification_secret": {"type": "http", "scheme": "bearer",
                                    "description": "the registry's notification secret"},
        },
        "schemas": SCHEMAS,
    },
    "paths": PATHS,
}


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(DOCUMENT)

"""``/api/v1`` routes for users, their access tokens and refresh tokens, and ``/me``."""

from typing import Any

from flask import Response, jsonify

from authsvc.core.policy import may_manage_user
from authsvc.db.access_tokens import TokenInfo
from authsvc.db.models import RefreshToken, User
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


def user_json(user: User) -> dict[str, Any]:
    return {"username": user.username, "admin": user.admin, "disabled": user.disabled,
            "robot": user.robot, "created_at": timestamp(user.created_at)}


def token_json(info: TokenInfo) -> dict[str, Any]:
    return {"id": info.id, "name": info.name, "permission": info.permission,
            "repositories": list(info.repositories), "created_at": timestamp(info.created_at),
            "expires_at": timestamp(info.expires_at),
            "last_used_at": timestamp(info.last_used_at)}


def refresh_json(row: RefreshToken) -> dict[str, Any]:
    return {"id": row.id, "service": row.service, "client_id": row.client_id,
            "created_at": timestamp(row.created_at), "expires_at": timestamp(row.expires_at),
            "last_used_at": timestamp(row.last_used_at)}


def require_admin() -> None:
    require(actor().admin and actor().limit is None,
            "only an admin logged in with a password may do this")


def require_user_manager(username: str) -> None:
    require(may_manage_user(actor(), username),
            f"only {username!r} (with a password, not an access token) or an admin may do this")


@bp.get("/me")
def me() -> Response:
    subject = actor()
    body = user_json(state().accounts.get_user(subject.name or ""))
    body["authenticated_with"] = "password" if subject.limit is None else "access_token"
    return jsonify(body)


@bp.post("/users")
def create_user() -> tuple[Response, int]:
    require_admin()
    body = json_body({"username": str, "password": str, "admin": bool, "robot": bool},
                     required=("username",))
    user = state().accounts.create_user(body["username"], body.get("password"),
                                        admin=body.get("admin", False),
                                        robot=body.get("robot", False))
    return created(user_json(user))


@bp.get("/users")
def list_users() -> Response:
    require_admin()
    page, per_page = page_args()
    accounts = state().accounts
    users = accounts.list_users((page - 1) * per_page, per_page)
    return paged([user_json(u) for u in users], accounts.count_users(), page, per_page)


@bp.get("/users/<name>")
def get_user(name: str) -> Response:
    require_user_manager(name)
    return jsonify(user_json(state().accounts.get_user(name)))


@bp.patch("/users/<name>")
def update_user(name: str) -> Response:
    body = json_body({"password": str, "admin": bool, "disabled": bool})
    if "admin" in body or "disabled" in body:
        require_admin()
    else:
        require_user_manager(name)
    user = state().accounts.update_user(name, password=body.get("password"),
                                        admin=body.get("admin"), disabled=body.get("disabled"))
    return jsonify(user_json(user))


@bp.delete("/users/<name>")
def delete_user(name: str) -> tuple[str, int]:
    require_admin()
    state().accounts.delete_user(name)
    return no_content()


@bp.post("/users/<name>/tokens")
def create_access_token(name: str) -> tuple[Response, int]:
    require_user_manager(name)
    body = json_body({"name": str, "permission": str, "expires_in_days": int,
                      "repositories": list}, required=("name", "permission"))
    state().accounts.get_user(name)
    info, secret = state().access_tokens.create(
        name, body["name"], body["permission"], expires_in_days=body.get("expires_in_days"),
        repositories=string_list(body, "repositories"))
    return created({**token_json(info), "token": secret})


@bp.get("/users/<name>/tokens")
def list_access_tokens(name: str) -> Response:
    require_user_manager(name)
    state().accounts.get_user(name)
    return jsonify(items=[token_json(t) for t in state().access_tokens.list_for(name)])


@bp.delete("/users/<name>/tokens/<int(max=2147483647):token_id>")
def revoke_access_token(name: str, token_id: int) -> tuple[str, int]:
    require_user_manager(name)
    state().access_tokens.revoke(token_id, name)
    return no_content()


@bp.get("/users/<name>/refresh-tokens")
def list_refresh_tokens(name: str) -> Response:
    require_user_manager(name)
    state().accounts.get_user(name)
    return jsonify(items=[refresh_json(t) for t in state().refresh_tokens.list_for(name)])


@bp.delete("/users/<name>/refresh-tokens/<int(max=2147483647):token_id>")
def revoke_refresh_token(name: str, token_id: int) -> tuple[str, int]:
    require_user_manager(name)
    state().refresh_tokens.revoke(token_id, name)
    return no_content()

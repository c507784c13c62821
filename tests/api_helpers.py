"""Helpers the admin-API tests share: one request, the error shape, and a snapshot of
everything the API can change (to prove a refused request changed nothing)."""

import dataclasses
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from authsvc.db.services import Services, services_of
from tests.conftest import PASSWORD
from tests.token_helpers import Decode

Who = tuple[str, str] | str | None
ROOT = ("root", PASSWORD)
ALICE = ("alice", PASSWORD)
BOB = ("bob", PASSWORD)
NEW_PASSWORD = "battery staple"


def call(client: FlaskClient, method: str, path: str, who: Who = None, **kwargs: Any) -> Any:
    """One API request: ``who`` is Basic (user, secret), a Bearer secret, or nobody."""
    if isinstance(who, str):
        kwargs["headers"] = {"Authorization": f"Bearer {who}"}
    elif who is not None:
        kwargs["auth"] = who
    return client.open(f"/api/v1{path}", method=method, **kwargs)


def error_of(response: Any, status: int, code: str | None = None) -> str:
    """Assert the ``{"errors": [{"code", "message"}]}`` shape and status; return the message."""
    assert response.status_code == status, response.get_data(as_text=True)
    (error,) = response.json["errors"]
    assert set(error) == {"code", "message"} and error["message"]
    if code is not None:
        assert error["code"] == code
    return str(error["message"])


def snapshot(app: Flask) -> dict[str, Any]:
    """Everything the API can change, read in a fresh app context (a session of its own)."""
    with app.app_context():
        s: Services = services_of(app)
        users = s.accounts.list_users()
        names = [u.username for u in users]
        return {
            "users": [(u.username, u.password_hash, u.admin, u.disabled, u.robot) for u in users],
            "repositories": [(r.name, r.visibility) for r in s.repos.search()[0]],
            "grants": s.grants.list_grants(),
            "access_tokens": [dataclasses.replace(t, last_used_at=None)
                              for n in names for t in s.access_tokens.list_for(n)],
            "refresh_tokens": [(n, r.id) for n in names for r in s.refresh_tokens.list_for(n)],
        }


def new_token(client: FlaskClient, owner: str = "alice", **body: Any) -> str:
    """A fresh access token of ``owner`` (``write`` unless told), made with their password."""
    body = {"name": "ci", "permission": "write", **body}
    response = call(client, "POST", f"/users/{owner}/tokens", (owner, PASSWORD), json=body)
    assert response.status_code == 201, response.json
    return str(response.json["token"])


def token_actions(client: FlaskClient, decode: Decode, name: str,
                  who: tuple[str, str] | None, actions: str = "pull,push,delete") -> set[str]:
    """The actions ``GET /token`` grants ``who`` (None: anonymous) on the repository ``name``;
    the token's entry names it exactly as asked."""
    response: Any = client.get("/token", query_string={
        "service": "registry", "scope": f"repository:{name}:{actions}"}, auth=who)
    assert response.status_code == 200, response.json
    (access,) = decode(response.json["token"])["access"]
    assert (access["type"], access["name"]) == ("repository", name)
    return set(access["actions"])

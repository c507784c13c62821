"""Reading authsvc's audit lines (``authsvc.db.audit: {json}``) out of its server log."""

import json
from typing import Any

MARK = "authsvc.audit: "


def event(line: str) -> dict[str, Any]:
    """The audit event a log line carries."""
    return json.loads(line.split(MARK, 1)[1])  # type: ignore[no-any-return]


def token_lines(lines: list[str]) -> list[str]:
    """The audit lines of issued tokens among ``lines``."""
    return [line for line in lines if MARK in line and event(line)["action"] == "token.issued"]


def grants(lines: list[str], grant_type: str, sub: str, client_id: str) -> list[str]:
    """The token lines issued with ``grant_type`` to ``sub`` for ``client_id`` ("-" = none)."""
    def matches(found: dict[str, Any]) -> bool:
        return (found.get("detail") == f"grant_type={grant_type}"
                and found.get("actor", "") == ("" if sub == "-" else sub)
                and found.get("client_id", "") == ("" if client_id == "-" else client_id))

    return [line for line in lines if matches(event(line))]


def scope_actions(line: str, field: str, repo: str) -> set[str]:
    """The actions the ``requested``/``granted`` field of a token line holds for ``repo``."""
    actions: set[str] = set()
    for scope in event(line).get(field, "").split():
        kind, _, rest = scope.partition(":")
        name, _, listed = rest.rpartition(":")
        if kind == "repository" and name == repo:
            actions.update(action for action in listed.split(",") if action)
    return actions

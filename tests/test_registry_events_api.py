"""``POST /api/v1/registry/events``: the registry's notifications, authenticated by the secret in
``CERTS_DIR/notification-secret.json`` and recorded once they are stored. Every refused request
is followed by a check that nothing was recorded."""

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from authsvc.db.models import AuditEvent, Manifest, RegistryEventSeen, Repository, Tag, db
from authsvc.db.services import services_of
from authsvc.pki.certs import CertPaths
from authsvc.pki.notification_secret import ensure_secret, rotate_secret
from tests.api_helpers import ROOT, call, error_of
from tests.test_registry_events import (
    MANIFEST,
    MANIFEST_PUSH,
    blob_target,
    envelope,
    go_event,
    manifest_target,
)

EVENTS = "/registry/events"


@pytest.fixture(name="certs_dir")
def private_certs_dir(certs_dir: Path, tmp_path: Path) -> Path:
    """A copy of the session's certificate folder, with a notification secret of its own: the
    tests rotate it and change its mode."""
    mine = tmp_path / "certs"
    shutil.copytree(certs_dir, mine)
    CertPaths(mine).notification_secret.unlink(missing_ok=True)
    ensure_secret(CertPaths(mine).notification_secret)
    return mine


@pytest.fixture(name="secret_path")
def notification_secret_path(certs_dir: Path) -> Path:
    return CertPaths(certs_dir).notification_secret


@pytest.fixture
def secret(secret_path: Path) -> str:
    return ensure_secret(secret_path)[0].current


@pytest.fixture
def root(make_user: Any) -> None:
    make_user("root", admin=True)


def post(client: FlaskClient, body: bytes, who: str | tuple[str, str] | None) -> Any:
    return call(client, "POST", EVENTS, who, data=body,
                content_type="application/vnd.docker.distribution.events.v2+json")


def recorded(app: Flask) -> dict[str, Any]:
    """Everything the notifications can change, read on a connection of its own."""
    with app.app_context(), db.engine.connect() as connection:
        def rows(*columns: Any) -> list[Any]:
            return [tuple(r) for r in connection.execute(select(*columns).order_by(*columns))]

        return {"repositories": rows(Repository.name, Repository.visibility,
                                     Repository.pushed_at, Repository.pull_count),
                "tags": rows(Tag.repository_id, Tag.name, Tag.digest, Tag.size),
                "manifests": rows(Manifest.repository_id, Manifest.digest),
                "seen": rows(RegistryEventSeen.id),
                "audit": connection.execute(select(func.count(AuditEvent.id))).scalar_one()}


def pull(event_id: str, tag: str = "v1", repository: str = "alice/app") -> dict[str, Any]:
    return go_event("pull", manifest_target(repository, tag=tag), event_id=event_id)


def push(event_id: str, tag: str = "v1", repository: str = "alice/app") -> dict[str, Any]:
    return go_event("push", manifest_target(repository, tag=tag), method="PUT",
                    event_id=event_id)


@pytest.fixture
def nothing(app: Flask) -> Iterator[dict[str, Any]]:
    """What is recorded before the test (checked unchanged by the refusals)."""
    yield recorded(app)


def assert_no_secret(response: Any, *secrets: str) -> None:
    text = response.get_data(as_text=True) + str(response.headers)
    for value in secrets:
        assert value not in text


# -- accepted ------------------------------------------------------------------------------------

def test_the_registrys_push_is_recorded_and_shown(client: FlaskClient, root: None,
                                                  secret: str) -> None:
    response = post(client, MANIFEST_PUSH, secret)
    assert response.status_code == 200, response.json
    assert response.json == {"recorded": 1, "duplicates": 0, "ignored": 0, "rejected": []}
    shown = call(client, "GET", "/repositories/alice/app", ROOT).json
    assert (shown["visibility"], shown["tag_count"], shown["size"]) == ("private", 1, 3372085)
    assert [(t["name"], t["digest"], t["pushed_by"], t["pushed_at"]) for t in shown["tags"]] == [
        ("latest", MANIFEST, "alice", "2026-12-01T14:04:05Z")]
    assert_no_secret(response, secret)


def test_the_same_envelope_twice_is_a_duplicate(app: Flask, client: FlaskClient,
                                                secret: str) -> None:
    body = envelope(push("p1"))
    assert post(client, body, secret).json["recorded"] == 1
    before = recorded(app)
    response = post(client, body, secret)
    assert response.status_code == 200
    assert response.json == {"recorded": 0, "duplicates": 1, "ignored": 0, "rejected": []}
    assert recorded(app) == before


def test_blob_events_are_ignored(app: Flask, client: FlaskClient, secret: str,
                                 nothing: dict[str, Any]) -> None:
    response = post(client, envelope(go_event("push", blob_target(), method="PUT")), secret)
    assert response.json == {"recorded": 0, "duplicates": 0, "ignored": 1, "rejected": []}
    assert recorded(app) == nothing


def test_one_bad_event_costs_only_itself(app: Flask, client: FlaskClient, secret: str) -> None:
    bad = push("bad-1") | {"timestamp": "yesterday"}
    response = post(client, envelope(push("good-1"), bad, pull("good-2")), secret)
    assert response.status_code == 200, response.json
    assert (response.json["recorded"], response.json["duplicates"]) == (2, 0)
    (reason,) = response.json["rejected"]
    assert reason.startswith("event 1 (id 'bad-1'): timestamp")
    assert recorded(app)["seen"] == [("good-1",), ("good-2",)]
    assert recorded(app)["repositories"][0][3] == 1  # the pull counted


# -- the secret ---------------------------------------------------------------------------------

def test_the_previous_secret_is_accepted_within_its_grace(app: Flask, client: FlaskClient,
                                                          secret_path: Path,
                                                          secret: str) -> None:
    new = rotate_secret(secret_path, timedelta(minutes=5)).current
    assert post(client, envelope(pull("l1")), secret).status_code == 200
    assert post(client, envelope(pull("l2")), new).status_code == 200
    assert recorded(app)["seen"] == [("l1",), ("l2",)]


@pytest.mark.parametrize("who", [
    pytest.param(None, id="no Authorization"),
    pytest.param("wrong", id="wrong secret"),
    pytest.param("SECRET", id="wrong case"),
    pytest.param("secretx", id="secret and more"),
    pytest.param("secret[:-1]", id="secret but one"),
    pytest.param("previous, grace over", id="previous after its grace"),
    pytest.param("basic", id="the secret as Basic password"),
    pytest.param("admin", id="an admin's password"),
])
def test_without_the_secret_nothing_is_recorded(app: Flask, client: FlaskClient, root: None,
                                                secret_path: Path, secret: str, who: Any,
                                                nothing: dict[str, Any]) -> None:
    if who == "previous, grace over":
        rotate_secret(secret_path, timedelta(hours=1),
                      now=datetime.now(UTC) - timedelta(hours=1, seconds=1))
    presented = {"wrong": "authsvc_ns_" + "x" * 43, "SECRET": secret.upper(),
                 "secretx": secret + "x", "secret[:-1]": secret[:-1],
                 "previous, grace over": secret, "basic": ("registry", secret),
                 "admin": ROOT}.get(who, who)
    response = post(client, MANIFEST_PUSH, presented)
    error_of(response, 401, "UNAUTHORIZED")
    assert_no_secret(response, secret)
    assert recorded(app) == nothing
    assert call(client, "GET", "/repositories/alice/app", ROOT).status_code == 404


@pytest.mark.parametrize("body", [
    pytest.param(b"", id="empty"),
    pytest.param(b"not json", id="not JSON"),
    pytest.param(b"\xff\xfe{}", id="not UTF-8"),
    pytest.param(b"[]", id="an array"),
    pytest.param(b'{"events": {}}', id="events no list"),
    pytest.param(b'{"event": []}', id="no events"),
    pytest.param(b"[" * 10_000 + b"]" * 10_000, id="nested too deeply"),
])
def test_a_malformed_envelope_is_400(app: Flask, client: FlaskClient, secret: str,
                                     body: bytes, nothing: dict[str, Any]) -> None:
    response = post(client, body, secret)
    error_of(response, 400)
    assert_no_secret(response, secret)
    assert recorded(app) == nothing


def test_a_body_over_the_limit_is_413(app: Flask, client: FlaskClient, secret: str,
                                      nothing: dict[str, Any]) -> None:
    events = [pull(f"l{i}") for i in range(1000)]
    body = envelope(*events)
    assert len(body) > app.config["MAX_REQUEST_BYTES"]
    response = post(client, body, secret)
    error_of(response, 413)
    assert_no_secret(response, secret)
    assert recorded(app) == nothing


def test_a_secret_file_readable_by_others_is_refused(app: Flask, client: FlaskClient,
                                                     secret_path: Path, secret: str,
                                                     nothing: dict[str, Any],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """The file is refused as unsafe: 503 with Retry-After (the registry retries); the log
    names the file and the fix, the answer neither it nor the secret."""
    secret_path.chmod(0o644)
    response = post(client, MANIFEST_PUSH, secret)
    message = error_of(response, 503, "UNAVAILABLE")
    assert response.headers["Retry-After"]
    assert str(secret_path) not in message and "read by others" not in message
    assert f"{secret_path} may be read by others" in caplog.text
    assert_no_secret(response, secret)
    assert recorded(app) == nothing
    secret_path.chmod(0o600)
    assert post(client, MANIFEST_PUSH, secret).status_code == 200


def test_a_secret_file_made_readable_by_others_is_refused_without_a_restart(
        app: Flask, client: FlaskClient, secret_path: Path, secret: str) -> None:
    assert post(client, envelope(pull("l1")), secret).status_code == 200
    secret_path.chmod(0o644)
    before = recorded(app)
    error_of(post(client, envelope(pull("l2")), secret), 503, "UNAVAILABLE")
    assert recorded(app) == before


def test_a_missing_secret_file_refuses_everything(app: Flask, client: FlaskClient,
                                                  secret_path: Path, secret: str,
                                                  nothing: dict[str, Any]) -> None:
    secret_path.unlink()
    response = post(client, MANIFEST_PUSH, secret)
    message = error_of(response, 503, "UNAVAILABLE")
    assert str(secret_path) not in message
    assert recorded(app) == nothing


def database_away(_events: Any) -> Any:
    raise OperationalError("INSERT", {}, Exception("connection refused"))


def test_events_not_stored_are_503_and_the_retry_records_them(
        app: Flask, client: FlaskClient, secret: str, monkeypatch: pytest.MonkeyPatch,
        nothing: dict[str, Any]) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(services_of(app).events, "record", database_away)
        response = post(client, MANIFEST_PUSH, secret)
    error_of(response, 503, "UNAVAILABLE")
    assert recorded(app) == nothing
    assert post(client, MANIFEST_PUSH, secret).json["recorded"] == 1


def test_events_not_stored_say_when_to_retry(app: Flask, client: FlaskClient, secret: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services_of(app).events, "record", database_away)
    response = post(client, MANIFEST_PUSH, secret)
    assert response.status_code == 503
    assert response.headers.get("Retry-After")

"""The audit trail: tokens issued and refused, failed logins, and every change, in the
database and as JSON log lines, never with a secret in them."""

import getpass
import json
import logging
import os
import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from authsvc.cli import cli
from authsvc.db.audit import Audit, Event, Origin, current_origin
from authsvc.db.models import AuditEvent, db
from authsvc.db.services import Services, services_of
from authsvc.errors import InvalidRequest
from authsvc.server.log_output import LogFormatter
from authsvc.server.serve import LOG_FORMAT
from tests.conftest import PASSWORD


def as_utc(moment: datetime) -> datetime:
    """A stored time as an aware UTC one (SQLite gives it back naive)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


#: What must never reach a log line as itself.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def events(app: Flask, action: str | None = None) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.execute(db.select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
        db.session.expunge_all()
    return [r for r in rows if action is None or r.action == action]


def test_issued_token_is_audited_with_who_what_and_where(app: Flask, client: FlaskClient,
                                                         make_user: Any) -> None:
    make_user("alice")
    client.get("/token?service=registry&client_id=docker&scope=repository:alice/a:pull,push"
               "&scope=repository:bob/b:pull", auth=("alice", PASSWORD))
    (event,) = events(app, "token.issued")
    assert (event.actor, event.client_id, event.service, event.remote_addr) == (
        "alice", "docker", "registry", "127.0.0.1")
    assert event.requested == "repository:alice/a:pull,push repository:bob/b:pull"
    assert event.granted == "repository:alice/a:pull,push"
    assert event.detail == "grant_type=basic"


def test_refused_token_and_failed_login_are_audited(app: Flask, client: FlaskClient,
                                                    make_user: Any) -> None:
    make_user("alice")
    client.get("/token?service=registry&scope=repository:alice/a:pull", auth=("alice", "bad"))
    client.get("/token?service=nowhere&scope=repository:alice/a:pull")
    (failed,) = events(app, "login.failed")
    assert (failed.actor, failed.target) == ("alice", "alice")
    assert "password" in failed.detail
    refused = events(app, "token.refused")
    assert [r.detail.split(":")[0] for r in refused] == ["UNAUTHORIZED", "INVALID_REQUEST"]
    assert refused[0].requested == "repository:alice/a:pull"


def test_changes_by_cli_and_api_name_their_actor(app: Flask, client: FlaskClient,
                                                 runner: FlaskCliRunner, make_user: Any) -> None:
    make_user("root", admin=True)
    runner.invoke(cli, ["user", "add", "alice", "--password-stdin"], input="alice-password\n")
    client.post("/api/v1/users", json={"username": "bob", "password": "bob-password"},
                auth=("root", PASSWORD))
    client.put("/api/v1/repositories/alice/web/-/grants/bob", json={"actions": ["pull"]},
               auth=("root", PASSWORD))
    created = {e.target: e.actor for e in events(app, "user.created")}
    assert created["alice"] == f"cli:{getpass.getuser()}"
    assert created["bob"] == "root"
    (grant,) = events(app, "grant.set")
    assert (grant.actor, grant.target, grant.detail) == ("root", "alice/web", "user=bob pull")


def test_each_event_is_one_json_log_line(client: FlaskClient, make_user: Any,
                                         caplog: pytest.LogCaptureFixture) -> None:
    make_user("alice")
    with caplog.at_level(logging.INFO, logger="authsvc.audit"):
        client.get("/token?service=registry&scope=repository:alice/a:pull",
                   auth=("alice", PASSWORD))
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "authsvc.audit"]
    assert [line["action"] for line in lines] == ["token.issued"]
    assert lines[0]["actor"] == "alice" and lines[0]["granted"] == "repository:alice/a:pull"


def test_audit_is_read_by_cli_and_by_admins_through_the_api(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner, make_user: Any) -> None:
    make_user("root", admin=True)
    make_user("alice")
    client.get("/token?service=registry&scope=repository:alice/a:pull", auth=("alice", PASSWORD))
    output = runner.invoke(cli, ["audit", "--action", "token."]).output
    assert "token.issued\talice\t" in output and "user.created" not in output
    response = client.get("/api/v1/audit?actor=alice&action=token.", auth=("root", PASSWORD))
    assert response.status_code == 200
    assert response.json["total"] == 1
    assert response.json["items"][0]["granted"] == "repository:alice/a:pull"
    refused = client.get("/api/v1/audit", auth=("alice", PASSWORD))
    assert refused.status_code == 403
    assert client.get("/api/v1/audit?since=yesterday", auth=("root", PASSWORD)).status_code == 422


def test_no_secret_reaches_a_log_or_the_audit_trail(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner, state: Services,
        caplog: pytest.LogCaptureFixture) -> None:
    """Passwords, access tokens, refresh tokens and JWTs are used everywhere they can be; none
    of them may appear in any log record or audit row."""
    secrets_used = ["root-password-1", "alice-password-1", "alice-password-2", "wrong-secret-9"]
    with caplog.at_level(logging.DEBUG):
        runner.invoke(cli, ["user", "add", "root", "--admin", "--password-stdin"],
                      input="root-password-1\n")
        runner.invoke(cli, ["user", "add", "alice", "--password-stdin"],
                      input="alice-password-1\n")
        login = client.get("/token?service=registry&client_id=docker&offline_token=true",
                           auth=("alice", "alice-password-1")).json
        secrets_used += [login["token"], login["refresh_token"]]
        refreshed = client.post("/token", data={
            "grant_type": "refresh_token", "refresh_token": login["refresh_token"],
            "service": "registry", "client_id": "docker",
            "scope": "repository:alice/a:push,pull"}).json
        secrets_used.append(refreshed["access_token"])
        pat = client.post("/api/v1/users/alice/tokens", json={"name": "ci", "permission": "write"},
                          auth=("alice", "alice-password-1")).json["token"]
        secrets_used.append(pat)
        client.get("/token?service=registry&scope=repository:alice/a:pull", auth=("alice", pat))
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {pat}"})
        client.get("/token?service=registry", auth=("alice", "wrong-secret-9"))
        client.patch("/api/v1/users/alice", json={"password": "alice-password-2"},
                     auth=("alice", "alice-password-1"))
        runner.invoke(cli, ["access-token", "create", "alice", "cli", "--permission", "read"])
        runner.invoke(cli, ["user", "passwd", "alice", "--password-stdin"],
                      input="alice-password-1\n")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    rows = events(app)
    stored = "\n".join(" ".join(str(getattr(r, c.name)) for c in AuditEvent.__table__.columns)
                       for r in rows)
    assert len(rows) > 10
    for secret in secrets_used:
        assert secret not in logged
        assert secret not in stored


@pytest.mark.app_config(AUDIT_BATCH_SECONDS=60)
def test_issued_tokens_are_written_in_batches(app: Flask, client: FlaskClient,
                                              make_user: Any, state: Services) -> None:
    make_user("alice")
    for _ in range(3):
        client.get("/token?service=registry&scope=repository:alice/a:pull",
                   auth=("alice", PASSWORD))
    assert events(app, "token.issued") == []
    state.audit.flush()
    assert len(events(app, "token.issued")) == 3
    assert events(app, "user.created")


@pytest.mark.app_config(AUDIT_BATCH_SECONDS=60)
def test_a_full_batch_is_written_without_waiting_for_its_interval(
        app: Flask, client: FlaskClient, make_user: Any, state: Services) -> None:
    """Under load the events waiting in a worker stay few: a full batch is written at once."""
    make_user("alice")
    state.audit.batch_rows = 3

    def token() -> None:
        client.get("/token?service=registry&scope=repository:alice/a:pull",
                   auth=("alice", PASSWORD))

    token()
    token()
    time.sleep(0.5)
    assert events(app, "token.issued") == []  # two: the batch waits for its 60 s
    token()
    deadline = time.monotonic() + 10
    while len(events(app, "token.issued")) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(events(app, "token.issued")) == 3


@pytest.mark.app_config(AUDIT_BATCH_SECONDS=60)
def test_a_forked_worker_does_not_write_its_parents_batch_again(
        app: Flask, client: FlaskClient, make_user: Any, state: Services) -> None:
    """granian forks its workers: rows batched before the fork are the parent's to write."""
    make_user("alice")
    client.get("/token?service=registry&scope=repository:alice/a:pull", auth=("alice", PASSWORD))
    child = os.fork()
    if child == 0:  # the worker: its exit flush must write nothing of the parent's
        state.audit.flush()
        os._exit(0)
    os.waitpid(child, 0)
    assert events(app, "token.issued") == []
    state.audit.flush()
    assert len(events(app, "token.issued")) == 1


#: Line breaks and terminal controls a client can put in a name, a client id or a scope.
HOSTILE = "\n\r\x0b\x0c\x1b[2J\x1c\x7f\x85\x9b\u2028\u2029"
FORGED = '[2026-01-01 00:00:00,000] [1] [INFO] authsvc.db.audit: {"action": "user.created"}'


def test_an_audit_line_is_one_line_whatever_its_fields_hold(
        client: FlaskClient, make_user: Any, caplog: pytest.LogCaptureFixture) -> None:
    """actor, target, client_id and requested come from the request: each event is still one
    line of JSON (even before authsvc's log formatter), and it holds the values as sent."""
    make_user("alice")
    name, client_id = f"alice{HOSTILE}{FORGED}", f"docker{HOSTILE}{FORGED}"
    scope = f"repository:alice/a{HOSTILE}:pull"
    with caplog.at_level(logging.INFO, logger="authsvc.audit"):
        client.get("/token", query_string={"service": "registry", "client_id": client_id,
                                           "scope": "repository:alice/a:pull"},
                   auth=(name, PASSWORD))
        client.get("/token", query_string={"service": "registry", "client_id": client_id,
                                           "scope": scope}, auth=("alice", PASSWORD))
    messages = [r.getMessage() for r in caplog.records if r.name == "authsvc.audit"]
    formatter = LogFormatter(LOG_FORMAT)
    formatted = [formatter.format(r) for r in caplog.records if r.name == "authsvc.audit"]
    for line in messages + formatted:
        assert len(line.splitlines()) == 1 and not CONTROL.search(line), repr(line)
    lines = [json.loads(m) for m in messages]
    assert {line["action"] for line in lines} >= {"login.failed", "token.refused"}
    failed = next(line for line in lines if line["action"] == "login.failed")
    assert failed["actor"] == failed["target"]
    assert failed["actor"].startswith(f"alice{HOSTILE}")  # (a long name is clipped)
    assert {line["client_id"] for line in lines} == {client_id}
    assert any(scope in line.get("requested", "") for line in lines), lines
    assert [json.loads(f.split("authsvc.audit: ", 1)[1]) for f in formatted] == lines


def test_authsvc_audit_prints_one_line_per_event_whatever_its_fields_hold(
        client: FlaskClient, runner: FlaskCliRunner, make_user: Any) -> None:
    """A stored field holds what a client sent: `authsvc audit` shows it escaped, so neither a
    forged line nor a terminal escape reaches the admin's screen."""
    make_user("alice")
    client.get("/token", query_string={"service": "registry", "client_id": f"x{HOSTILE}"},
               auth=(f"alice{FORGED}\x1b[2J", PASSWORD))
    result = runner.invoke(cli, ["audit", "--action", "login."])
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and len(lines) == 1, result.output
    fields = lines[0].split("\t")  # tab-separated: a tab in a field is escaped too
    assert len(fields) == 6 and not any(CONTROL.search(field) for field in fields), fields
    assert "\\u001b[2J" in lines[0]


def test_two_requests_on_one_thread_never_share_an_origin(
        app: Flask, client: FlaskClient, make_user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit origin (address, client id, actor) lives as long as its request: the next
    request on the thread starts without it, even one that fails before setting its own, and
    so does any work the thread does in between."""
    make_user("root", admin=True)
    seen: list[Origin] = []

    def refuse_early(environ: dict[str, Any]) -> None:
        seen.append(current_origin())
        raise InvalidRequest("refused before the request set its origin")

    for path in ("/token?service=registry&client_id=first", "/api/v1/me"):
        monkeypatch.undo()
        first = client.get(path, auth=("root", PASSWORD),
                           environ_base={"REMOTE_ADDR": "192.0.2.1"})
        assert first.status_code == 200, first.json
        assert current_origin() == Origin()
        with app.app_context():  # work the thread does between requests: nobody's
            services_of(app).audit.record(Event("job.ran"))
        monkeypatch.setattr("authsvc.web.api.token.refuse_nul", refuse_early)
        monkeypatch.setattr("authsvc.web.api.refuse_nul", refuse_early)
        second = client.get(path, environ_base={"REMOTE_ADDR": "192.0.2.2"})
        assert second.status_code in (400, 422), second.json  # (422: the API's validation)
    assert all(origin.actor == "" and origin.client_id == "" and origin.remote_addr != "192.0.2.1"
               for origin in seen), seen
    assert [(e.actor, e.remote_addr, e.client_id) for e in events(app, "job.ran")] == [
        ("", "", "")] * 2


@pytest.mark.parametrize("batch_seconds", [0, 60])
def test_each_event_is_stamped_by_the_audit_clock(
        app: Flask, caplog: pytest.LogCaptureFixture, batch_seconds: float) -> None:
    """The time is injected: rows and log lines carry the clock's time, batched or not."""
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    with app.app_context(), caplog.at_level(logging.INFO, logger="authsvc.audit"):
        audit = Audit(db.session, batch_seconds, clock=lambda: moment)
        audit.record_soon(Event("clock.checked"))
        audit.flush()
    (row,) = events(app, "clock.checked")
    assert as_utc(row.at) == moment
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "authsvc.audit"]
    assert line["at"] == "2026-01-02T03:04:05.678901Z"

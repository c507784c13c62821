"""The secret the registry's notifications carry (authsvc.pki.notification_secret): an
owner-only file whatever the umask, rotation with a grace for the previous secret (time is
injected), ``SecretFile`` following a rotation without a restart, and the commands that make
and rotate it (``authsvc init``, ``authsvc registry rotate-secret``)."""

import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient, FlaskCliRunner

from authsvc import create_app
from authsvc.cli import cli
from authsvc.errors import CertificateError
from authsvc.pki.certs import CertPaths
from authsvc.pki.notification_secret import (
    NotificationSecrets,
    SecretFile,
    ensure_secret,
    read_secrets,
    rotate_secret,
)
from tests.test_registry_events import envelope, go_event, manifest_target
from tests.test_registry_events_api import (  # noqa: F401 - the fixtures certs_dir, secret_path
    notification_secret_path,
    private_certs_dir,
)

T = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "notification-secret.json"


@pytest.fixture
def umask() -> Iterator[None]:
    """Restores the process umask a test changes."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


# -- the file ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [0o000, 0o002, 0o022, 0o077])
def test_the_file_is_owner_only_whatever_the_umask(path: Path, umask: None, mask: int) -> None:
    os.umask(mask)
    made, created = ensure_secret(path)
    assert created and mode(path) == 0o600
    rotate_secret(path)
    assert mode(path) == 0o600
    assert not path.with_name(path.name + ".new").exists()
    assert made.current.startswith("authsvc_ns_") and len(made.current) >= 40


def test_ensure_makes_the_secret_once(path: Path) -> None:
    first, created = ensure_secret(path)
    again, created_again = ensure_secret(path)
    assert (created, created_again) == (True, False)
    assert again == first == NotificationSecrets(first.current)
    assert ensure_secret(path.with_name("other.json"))[0].current != first.current


@pytest.mark.parametrize(("content", "file_mode", "message"), [
    pytest.param(None, 0o600, "cannot read", id="missing"),
    pytest.param("ok", 0o644, "may be read by others", id="readable by others"),
    pytest.param("ok", 0o640, "may be read by others", id="readable by the group"),
    pytest.param("{not json", 0o600, "is damaged", id="not JSON"),
    pytest.param("[]", 0o600, "is damaged", id="not an object"),
    pytest.param("{}", 0o600, "is damaged", id="no current"),
    pytest.param('{"current": "' + "x" * 40 + '", "previous_until": "soon"}', 0o600,
                 "is damaged", id="bad time"),
    pytest.param('{"current": "short"}', 0o600, "too short", id="too short"),
])
def test_a_bad_file_is_refused_with_the_reason(path: Path, content: str | None,
                                               file_mode: int, message: str) -> None:
    if content == "ok":
        ensure_secret(path)
    elif content is not None:
        path.write_text(content)
    if path.exists():
        path.chmod(file_mode)
    with pytest.raises(CertificateError, match=message):
        read_secrets(path)


# -- rotation ------------------------------------------------------------------------------------

def test_the_previous_secret_is_accepted_until_its_grace_ends(path: Path) -> None:
    old = ensure_secret(path)[0].current
    rotated = rotate_secret(path, timedelta(minutes=10), now=T)
    assert read_secrets(path) == rotated
    assert (rotated.previous, rotated.previous_until) == (old, T + timedelta(minutes=10))
    assert rotated.current != old
    assert rotated.accepts(old, T + timedelta(minutes=9, seconds=59))
    assert not rotated.accepts(old, T + timedelta(minutes=10))
    assert rotated.accepts(rotated.current, T + timedelta(days=365))
    for wrong in ("", "\0", old[:-1], old + "x", rotated.current.upper()):
        assert not rotated.accepts(wrong, T)


def test_a_rotation_without_grace_drops_the_previous_at_once(path: Path) -> None:
    old = ensure_secret(path)[0].current
    rotated = rotate_secret(path, timedelta(0), now=T)
    assert not rotated.accepts(old, T)
    assert rotated.previous_until is None


def test_a_second_rotation_forgets_the_first_secret(path: Path) -> None:
    first = ensure_secret(path)[0].current
    second = rotate_secret(path, timedelta(hours=1), now=T).current
    third = rotate_secret(path, timedelta(hours=1), now=T + timedelta(minutes=1))
    assert third.previous == second
    assert not third.accepts(first, T + timedelta(minutes=2))
    assert third.accepts(second, T + timedelta(minutes=2))


def test_a_damaged_file_is_replaced_only_with_force(path: Path) -> None:
    path.write_text('{"current": ')
    path.chmod(0o600)
    with pytest.raises(CertificateError, match="damaged"):
        rotate_secret(path, now=T)
    assert path.read_text() == '{"current": '
    fresh = rotate_secret(path, now=T, force=True)
    assert fresh == NotificationSecrets(fresh.current)  # nothing old stays accepted
    assert read_secrets(path) == fresh and mode(path) == 0o600


def test_a_missing_file_is_made_by_a_rotation(path: Path) -> None:
    made = rotate_secret(path, now=T)
    assert made == NotificationSecrets(made.current)
    assert read_secrets(path) == made


def test_a_secret_file_follows_a_rotation_without_a_restart(path: Path) -> None:
    old = ensure_secret(path)[0].current
    secrets = SecretFile(path)
    first = secrets.current()
    assert first.current == old
    assert secrets.current() is first  # unchanged file, not read again
    new = rotate_secret(path, timedelta(hours=1)).current
    assert (secrets.current().current, secrets.current().previous) == (new, old)
    path.unlink()
    with pytest.raises(CertificateError, match="cannot read"):
        secrets.current()


# -- the commands --------------------------------------------------------------------------------

def rotate(runner: FlaskCliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["registry", "rotate-secret", *args])
    return result.exit_code, result.output


def test_rotate_secret_keeps_the_previous_for_an_hour(runner: FlaskCliRunner,
                                                      secret_path: Path) -> None:
    old = read_secrets(secret_path).current
    before = datetime.now(UTC)
    code, output = rotate(runner)
    assert code == 0, output
    now = read_secrets(secret_path)
    assert now.previous == old and now.current != old
    assert now.previous_until is not None
    assert before + timedelta(hours=1) <= now.previous_until <= datetime.now(UTC) + timedelta(
        hours=1)
    assert f"wrote a new notification secret to {secret_path}" in output
    assert "the previous one is accepted until" in output
    assert old not in output and now.current not in output
    assert mode(secret_path) == 0o600


def test_rotate_secret_with_no_grace(runner: FlaskCliRunner, secret_path: Path) -> None:
    old = read_secrets(secret_path).current
    code, output = rotate(runner, "--grace", "0")
    assert code == 0, output
    assert "accepted until" not in output
    assert not read_secrets(secret_path).accepts(old, datetime.now(UTC))


@pytest.mark.parametrize("grace", ["-1", "2592001", "soon"])
def test_rotate_secret_refuses_a_bad_grace(runner: FlaskCliRunner, secret_path: Path,
                                           grace: str) -> None:
    before = secret_path.read_bytes()
    assert rotate(runner, "--grace", grace)[0] == 2
    assert secret_path.read_bytes() == before


def test_rotate_secret_replaces_a_damaged_file_with_force(runner: FlaskCliRunner,
                                                          secret_path: Path) -> None:
    secret_path.write_text("garbage")
    code, output = rotate(runner)
    assert code == 1
    assert output.startswith("Error: ") and output.count("\n") == 1
    assert "--force" in output
    assert secret_path.read_text() == "garbage"
    code, output = rotate(runner, "--force")
    assert code == 0, output
    assert read_secrets(secret_path).previous == ""


def pull_envelope(event_id: str) -> bytes:
    return envelope(go_event("pull", manifest_target(tag="v1"), event_id=event_id))


def test_a_running_service_takes_the_rotated_secret(runner: FlaskCliRunner, client: FlaskClient,
                                                    secret_path: Path) -> None:
    def post(secret: str, event_id: str) -> int:
        return client.post("/api/v1/registry/events", data=pull_envelope(event_id),
                           headers={"Authorization": f"Bearer {secret}"}).status_code

    old = read_secrets(secret_path).current
    assert post(old, "e1") == 200
    assert rotate(runner, "--grace", "60")[0] == 0
    new = read_secrets(secret_path).current
    assert (post(new, "e2"), post(old, "e3")) == (200, 200)
    assert rotate(runner, "--grace", "0")[0] == 0
    newest = read_secrets(secret_path).current
    assert (post(new, "e4"), post(old, "e5"), post(newest, "e6")) == (401, 401, 200)


def test_init_makes_the_secret_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    umask: None) -> None:
    os.umask(0o022)
    monkeypatch.setenv("AUTHSVC_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("AUTHSVC_CERTS_DIR", str(tmp_path / "certs"))
    runner = create_app({"BCRYPT_ROUNDS": 4}).test_cli_runner()
    secret = CertPaths(tmp_path / "certs").notification_secret
    first = runner.invoke(cli, ["init"])
    assert first.exit_code == 0, first.output
    assert f"notification secret: created in {secret}\n" in first.output
    made = secret.read_bytes()
    assert mode(secret) == 0o600
    assert json.loads(made)["current"] not in first.output
    second = runner.invoke(cli, ["init"])
    assert second.exit_code == 0, second.output
    assert "notification secret" not in second.output
    assert secret.read_bytes() == made
    secret.unlink()  # certificates made by an authsvc from before notifications
    third = runner.invoke(cli, ["init"])
    assert f"notification secret: created in {secret}\n" in third.output
    assert mode(secret) == 0o600

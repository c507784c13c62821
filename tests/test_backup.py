"""`authsvc backup FILE` and `authsvc restore FILE`: what the archive holds and with which
modes, what restore refuses (a used instance, members that would land elsewhere, a damaged
or newer database), and a round trip of users, grants and tokens."""

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask

from authsvc import create_app
from authsvc.cli import cli
from authsvc.db.models import db
from authsvc.db.schema import head_revision, upgrade
from authsvc.db.services import services_of
from authsvc.pki.web_secret import ensure_key, key_path
from tests.conftest import PASSWORD, TEST_CONFIG
from tests.test_file_modes import mode, umask_022  # noqa: F401 - umask_022: autouse fixture

KEYS = {"ca-key.pem", "authsvc-key.pem", "registry-key.pem", "token-signing-key.pem",
        "web-secret-key", "notification-secret.json"}
PUBLIC = {"ca.pem", "authsvc.pem", "registry.pem", "token-signing.pem", "rootcertbundle.pem",
          "jwks.json"}

Invoke = Callable[..., Result]


def site_app(root: Path, monkeypatch: pytest.MonkeyPatch, **settings: object) -> Flask:
    """An app on SQLite in ``root/instance`` with its certificates in ``root/certs``, whatever
    database the rest of the suite runs on."""
    monkeypatch.setenv("AUTHSVC_INSTANCE", str(root / "instance"))
    monkeypatch.setenv("AUTHSVC_CERTS_DIR", str(root / "certs"))
    return create_app({**TEST_CONFIG, "DATABASE_URL": "", **settings})


def invoker(app: Flask) -> Invoke:
    def invoke(*args: str) -> Result:
        return app.test_cli_runner().invoke(cli, list(args))
    return invoke


@pytest.fixture
def source(tmp_path: Path, certs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """A used instance: the suite's certificates (copied, modes kept), a migrated database
    with alice, a grant, a repository and an access token, and an instance/config.py."""
    shutil.copytree(certs_dir, tmp_path / "source" / "certs")
    ensure_key(key_path(tmp_path / "source" / "certs"))  # as `authsvc init` makes it
    (tmp_path / "source" / "instance").mkdir(parents=True)
    (tmp_path / "source" / "instance" / "config.py").write_text('REGISTRY_URL = "https://r:5000"\n')
    app = site_app(tmp_path / "source", monkeypatch)
    with app.app_context():
        upgrade(db.engine)
        state = services_of(app)
        state.accounts.create_user("alice", PASSWORD)
        state.repos.create("alice/web", "private")
        state.grants.grant("bob", "alice/web", "pull")
        db.session.remove()
        db.engine.dispose()
    return app


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Flask]:
    """A new instance to restore into (built when called: after the source's commands, as the
    environment names one instance at a time)."""
    return lambda: site_app(tmp_path / "target", monkeypatch)


def archive_members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as archive:
        return {info.name: info for info in archive.getmembers()}


def test_backup_holds_the_database_and_the_certificate_folder_keys_owner_only(
        source: Flask, tmp_path: Path) -> None:
    file = tmp_path / "backup.tar.gz"
    result = invoker(source)("backup", str(file))
    assert result.exit_code == 0, result.output
    assert mode(file) == 0o600
    members = archive_members(file)
    assert set(members) == ({"manifest.json", "authsvc.db", "instance/config.py"}
                            | {f"certs/{name}" for name in KEYS | PUBLIC})
    assert all(info.isreg() for info in members.values())
    private = {"authsvc.db", "instance/config.py", "manifest.json"} | {f"certs/{n}" for n in KEYS}
    assert {name for name, info in members.items() if info.mode == 0o600} == private
    assert {name for name, info in members.items() if info.mode == 0o644} == \
        {f"certs/{name}" for name in PUBLIC}
    assert "users 1" in result.output and "grants 1" in result.output
    assert "repositories 1" in result.output
    assert "0600" in result.output and "certs/token-signing-key.pem" in result.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".authsvc-backup")]


def test_backup_never_replaces_a_file_without_force(source: Flask, tmp_path: Path) -> None:
    file = tmp_path / "backup.tar.gz"
    file.write_bytes(b"an earlier backup")
    refused = invoker(source)("backup", str(file))
    assert refused.exit_code == 1
    assert "exists: pass --force" in refused.output
    assert file.read_bytes() == b"an earlier backup"
    replaced = invoker(source)("backup", str(file), "--force")
    assert replaced.exit_code == 0, replaced.output
    assert "authsvc.db" in archive_members(file) and mode(file) == 0o600


def test_backup_of_postgresql_is_refused_pointing_to_pg_dump(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, certs_dir: Path) -> None:
    shutil.copytree(certs_dir, tmp_path / "pg" / "certs")
    app = site_app(tmp_path / "pg", monkeypatch,
                   DATABASE_URL="postgresql+psycopg://authsvc@db.invalid/authsvc")
    for command in ("backup", "restore"):
        result = invoker(app)(command, str(tmp_path / "backup.tar.gz"))
        assert result.exit_code == 1
        assert "PostgreSQL" in result.output and "pg_dump" in result.output
    assert not (tmp_path / "backup.tar.gz").exists()


def test_round_trip_keeps_users_grants_tokens_and_the_signing_key(
        source: Flask, target: Callable[[], Flask], tmp_path: Path) -> None:
    with source.app_context():
        state = services_of(source)
        _, access_secret = state.access_tokens.create("alice", "ci", "write")
        refresh_secret = state.refresh_tokens.issue("alice", "registry", "docker")
        signed = state.issuer.issue("alice", "registry", []).token
        db.session.remove()
        db.engine.dispose()
    file = tmp_path / "backup.tar.gz"
    assert invoker(source)("backup", str(file)).exit_code == 0
    restored = target()
    result = invoker(restored)("restore", str(file))
    assert result.exit_code == 0, result.output
    assert "users 1" in result.output and "integrity ok" in result.output
    certs = tmp_path / "target" / "certs"
    assert {p.name for p in certs.iterdir()} == KEYS | PUBLIC
    assert {name for name in KEYS if mode(certs / name) == 0o600} == KEYS
    assert {name for name in PUBLIC if mode(certs / name) == 0o644} == PUBLIC
    assert mode(tmp_path / "target" / "instance" / "authsvc.db") == 0o600
    assert (tmp_path / "target" / "instance" / "config.py").read_text() == \
        'REGISTRY_URL = "https://r:5000"\n'
    with restored.app_context():
        state = services_of(restored)
        assert state.accounts.authenticate("alice", PASSWORD).name == "alice"
        assert [(g.username, g.target) for g in state.grants.list_grants()] == \
            [("bob", "alice/web")]
        assert state.repos.get("alice/web").visibility == "private"
        assert state.access_tokens.authenticate(access_secret).name == "alice"
        assert state.refresh_tokens.redeem(refresh_secret, "registry", "docker").name == \
            "alice"
        again = state.issuer.issue("alice", "registry", []).token
        assert again.split(".")[0] == signed.split(".")[0]  # same key id and certificate
        db.session.remove()
        db.engine.dispose()


def test_restore_refuses_an_instance_that_has_a_database_or_certificates(
        source: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "backup.tar.gz"
    assert invoker(source)("backup", str(file)).exit_code == 0
    before = (tmp_path / "source" / "instance" / "authsvc.db").read_bytes()
    into_itself = invoker(site_app(tmp_path / "source", monkeypatch))("restore", str(file))
    assert into_itself.exit_code == 1
    assert "authsvc.db exists and is not empty" in into_itself.output
    assert (tmp_path / "source" / "instance" / "authsvc.db").read_bytes() == before

    (tmp_path / "certs-only" / "certs").mkdir(parents=True)
    (tmp_path / "certs-only" / "certs" / "ca.pem").write_text("another CA\n")
    certs_only = invoker(site_app(tmp_path / "certs-only", monkeypatch))("restore", str(file))
    assert certs_only.exit_code == 1
    assert "certs is not empty" in certs_only.output
    assert (tmp_path / "certs-only" / "instance" / "authsvc.db").stat().st_size == 0
    assert os.listdir(tmp_path / "certs-only" / "certs") == ["ca.pem"]


def write_archive(path: Path, files: dict[str, bytes], *, manifest: bool = True,
                  extra: tarfile.TarInfo | None = None) -> None:
    """An archive of ``files`` with a manifest that vouches for each (as a backup writes it),
    plus ``extra`` (a link, say) when given."""
    entries = dict(files)
    if manifest:
        listed = {name: {"mode": "600", "sha256": hashlib.sha256(data).hexdigest()}
                  for name, data in files.items()}
        entries = {"manifest.json": json.dumps({"format": 1, "files": listed}).encode(),
                   **files}
    with tarfile.open(path, "w:gz") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            archive.addfile(info, io.BytesIO(data))
        if extra is not None:
            archive.addfile(extra)


def unpacked(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as archive:
        return {info.name: archive.extractfile(info).read()  # type: ignore[union-attr]
                for info in archive.getmembers() if info.name != "manifest.json"}


def link(name: str, to: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, to
    return info


@pytest.mark.parametrize(("name", "extra"), [
    ("../escaped", None),
    ("/tmp/absolute", None),
    ("certs/../../escaped", None),
    ("certs/sub/key.pem", None),
    ("certs/.hidden", None),
    ("notes.txt", None),
    ("", link("certs/ca.pem", "/etc/shadow")),
    ("", link("certs/token-signing-key.pem", "/etc/shadow", tarfile.LNKTYPE)),
])
def test_restore_refuses_members_a_backup_never_writes(
        source: Flask, target: Callable[[], Flask], tmp_path: Path, name: str,
        extra: tarfile.TarInfo | None) -> None:
    good = tmp_path / "backup.tar.gz"
    assert invoker(source)("backup", str(good)).exit_code == 0
    files = unpacked(good)
    if name:
        files[name] = b"planted\n"
    bad = tmp_path / "bad.tar.gz"
    write_archive(bad, files, extra=extra)
    result = invoker(target())("restore", str(bad))
    assert result.exit_code == 1
    assert "unexpected member" in result.output and "nothing restored" in result.output
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "target" / "escaped").exists()
    assert (tmp_path / "target" / "instance" / "authsvc.db").stat().st_size == 0
    assert not (tmp_path / "target" / "certs").exists()


@pytest.mark.parametrize("damage", ["checksum", "no manifest", "missing file", "not gzip"])
def test_restore_refuses_a_damaged_archive(source: Flask, target: Callable[[], Flask],
                                          tmp_path: Path, damage: str) -> None:
    good = tmp_path / "backup.tar.gz"
    assert invoker(source)("backup", str(good)).exit_code == 0
    bad = tmp_path / "bad.tar.gz"
    files = unpacked(good)
    if damage == "checksum":
        with tarfile.open(good) as archive, tarfile.open(bad, "w:gz") as out:
            for info in archive.getmembers():
                data = archive.extractfile(info).read()  # type: ignore[union-attr]
                if info.name == "certs/ca.pem":
                    data = data.replace(b"A", b"B", 1)
                out.addfile(info, io.BytesIO(data))
    elif damage == "no manifest":
        write_archive(bad, files, manifest=False)
    elif damage == "missing file":
        write_archive(bad, {name: data for name, data in files.items()
                            if name != "authsvc.db"})
    else:
        bad.write_bytes(b"this is no archive")
    result = invoker(target())("restore", str(bad))
    assert result.exit_code == 1
    assert "nothing restored" in result.output or "cannot read the archive" in result.output
    assert (tmp_path / "target" / "instance" / "authsvc.db").stat().st_size == 0


def database_archive(good: Path, bad: Path, change: Callable[[Path], None]) -> None:
    """``bad``: the backup ``good`` with its database changed by ``change`` (the manifest
    vouching for the changed file, as if the backup had been taken so)."""
    files = unpacked(good)
    database = bad.with_suffix(".db")
    database.write_bytes(files["authsvc.db"])
    change(database)
    files["authsvc.db"] = database.read_bytes()
    write_archive(bad, files)


def set_revision(revision: str) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        with sqlite3.connect(path) as connection:
            connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        connection.close()
    return change


def corrupt(path: Path) -> None:
    """Scribble over the pages after the schema, where the tables' rows and indexes are."""
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(2 * page, len(data) - page, 3 * page):
        data[start + 8:start + 200] = b"\xa5" * 192
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("change", "message"), [
    (set_revision("9999"), "schema revision 9999, which this authsvc does not know"),
    (corrupt, "integrity check|malformed|not a readable"),
])
def test_restore_refuses_a_newer_or_corrupt_database(
        source: Flask, target: Callable[[], Flask], tmp_path: Path,
        change: Callable[[Path], None], message: str) -> None:
    import re

    good = tmp_path / "backup.tar.gz"
    assert invoker(source)("backup", str(good)).exit_code == 0
    bad = tmp_path / "bad.tar.gz"
    database_archive(good, bad, change)
    result = invoker(target())("restore", str(bad))
    assert result.exit_code == 1
    assert re.search(message, result.output), result.output
    assert (tmp_path / "target" / "instance" / "authsvc.db").stat().st_size == 0
    assert not (tmp_path / "target" / "certs").exists()


def test_restore_of_an_older_schema_says_to_migrate(
        tmp_path: Path, certs_dir: Path, monkeypatch: pytest.MonkeyPatch,
        target: Callable[[], Flask]) -> None:
    shutil.copytree(certs_dir, tmp_path / "old" / "certs")
    old = site_app(tmp_path / "old", monkeypatch)
    with old.app_context():
        upgrade(db.engine, "0005")
        head = head_revision(db.engine)
        db.engine.dispose()
    file = tmp_path / "backup.tar.gz"
    assert invoker(old)("backup", str(file)).exit_code == 0
    result = invoker(target())("restore", str(file))
    assert result.exit_code == 0, result.output
    assert f"schema revision 0005 is older than this authsvc's {head}" in result.output
    assert "authsvc db upgrade" in result.output


def test_backup_into_a_missing_folder_is_one_line_naming_it(source: Flask,
                                                            tmp_path: Path) -> None:
    result = invoker(source)("backup", str(tmp_path / "nowhere" / "backup.tar.gz"))
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'nowhere'} is not a folder: create it first\n"

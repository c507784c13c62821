"""The modes of what authsvc writes: the instance folder 0700, the SQLite database and its
companions (-wal, -shm, -journal) 0600, private keys 0600, whatever the umask and whatever
mode a folder that already existed had."""

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text

from authsvc import create_app
from authsvc.cli import cli
from authsvc.db.models import db

KEYS = ("ca-key.pem", "authsvc-key.pem", "registry-key.pem", "token-signing-key.pem")
COMPANIONS = ("-wal", "-shm", "-journal")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    """The common umask: files 0644 and folders 0755 unless authsvc says otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An instance folder and a certificate folder made beforehand with mode 0755."""
    instance, certs = tmp_path / "instance", tmp_path / "certs"
    for folder in (instance, certs):
        folder.mkdir()
        folder.chmod(0o755)
    monkeypatch.setenv("AUTHSVC_INSTANCE", str(instance))
    monkeypatch.setenv("AUTHSVC_CERTS_DIR", str(certs))
    return instance, certs


def make_app(**settings: object) -> Flask:
    return create_app({"BCRYPT_ROUNDS": 4, "TESTING": True, **settings})


def test_init_into_an_existing_0755_folder_leaves_nothing_readable_by_others(
        folders: tuple[Path, Path]) -> None:
    instance, certs = folders
    app = make_app()
    result = app.test_cli_runner().invoke(cli, ["init", "--admin-password-stdin"],
                                          input="a long password\n")
    assert result.exit_code == 0, result.output
    assert mode(instance) == 0o700
    assert mode(instance / "authsvc.db") == 0o600
    assert {name: mode(certs / name) for name in KEYS} == dict.fromkeys(KEYS, 0o600)


def test_the_write_ahead_log_and_shared_memory_files_are_0600(
        folders: tuple[Path, Path]) -> None:
    instance, _ = folders
    app = make_app()
    with app.app_context(), db.engine.connect() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.commit()
        companions = [instance / f"authsvc.db{suffix}" for suffix in ("-wal", "-shm")]
        assert {p.name: mode(p) for p in companions} == {p.name: 0o600 for p in companions}
    assert mode(instance / "authsvc.db") == 0o600


def test_a_database_left_readable_by_an_earlier_version_is_made_0600(
        folders: tuple[Path, Path]) -> None:
    """Files an older authsvc made 0644 are owner-only once authsvc starts again (and SQLite
    gives new companions the database file's mode)."""
    instance, _ = folders
    files = [instance / f"authsvc.db{suffix}" for suffix in ("", *COMPANIONS)]
    for path in files:
        path.touch(mode=0o644)
    make_app()
    assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert mode(instance) == 0o700


def test_a_new_instance_folder_and_its_database_are_owner_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    instance = tmp_path / "deep" / "instance"
    monkeypatch.setenv("AUTHSVC_INSTANCE", str(instance))
    monkeypatch.setenv("AUTHSVC_CERTS_DIR", str(tmp_path / "certs"))
    app = make_app()
    with app.app_context():
        db.create_all()
    assert mode(instance) == 0o700
    assert mode(instance / "authsvc.db") == 0o600


def test_a_sqlite_database_outside_the_instance_folder_is_0600(
        folders: tuple[Path, Path], tmp_path: Path) -> None:
    """DATABASE_URL may put the file elsewhere: the file is authsvc's, its folder is not."""
    elsewhere = tmp_path / "data"
    elsewhere.mkdir(mode=0o755)
    app = make_app(DATABASE_URL=f"sqlite:///{elsewhere}/other.db")
    with app.app_context():
        db.create_all()
    assert mode(elsewhere / "other.db") == 0o600
    assert mode(elsewhere) == 0o755


def test_certs_init_into_an_existing_0755_folder_writes_0600_keys(
        folders: tuple[Path, Path]) -> None:
    _, certs = folders
    result = make_app().test_cli_runner().invoke(cli, ["certs", "init", "--host", "localhost"])
    assert result.exit_code == 0, result.output
    assert {name: mode(certs / name) for name in KEYS} == dict.fromkeys(KEYS, 0o600)
    assert mode(certs / "ca.pem") == 0o644  # public: clients and the registry read it


def test_a_folder_holding_more_than_authsvc_files_is_left_alone_with_a_warning(
        folders: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    """AUTHSVC_INSTANCE may name a folder others use too (say /srv): authsvc must not lock
    them out of it. Its own database file is 0600 all the same."""
    instance, _ = folders
    (instance / "someone-elses.txt").write_text("hello")
    with caplog.at_level(logging.WARNING, logger="authsvc.db.sqlite_files"):
        make_app()
    assert mode(instance) == 0o755
    assert mode(instance / "authsvc.db") == 0o600
    assert f"run `chmod 700 {instance}`" in caplog.text

"""Shared fixtures: an app on a temporary instance and certificate folder, with fast hashing."""

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, text

from authsvc import create_app
from authsvc.db.audit import Origin, acting_as
from authsvc.db.models import db
from authsvc.db.schema import empty_postgres_database, upgrade
from authsvc.db.services import Services, services_of
from authsvc.pki.certs import CertPaths, bootstrap
from authsvc.pki.notification_secret import ensure_secret

PASSWORD = "correct horse"


@pytest.fixture(autouse=True)
def fresh_audit_origin() -> Iterator[None]:
    """Each test starts with no audit origin (requests set their own; tests run outside them)."""
    with acting_as(Origin()):
        yield


@pytest.fixture(scope="session")
def certs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One certificate folder for the whole run: key generation is the slow part."""
    root = tmp_path_factory.mktemp("certs")
    bootstrap(root, ["localhost", "127.0.0.1"])
    ensure_secret(CertPaths(root).notification_secret)  # as `authsvc init` makes it
    return root


#: Lockout limits high enough for tests that fail many logins on purpose; tests of the lockout
#: itself set their own with ``@pytest.mark.app_config(...)``.
TEST_CONFIG = {"BCRYPT_ROUNDS": 4, "TESTING": True, "LOCKOUT_ATTEMPTS": 1000,
               "LOCKOUT_ADDRESS_ATTEMPTS": 10000, "AUDIT_BATCH_SECONDS": 0}


#: Run the suite against this database (PostgreSQL) instead of a fresh SQLite file per test.
TEST_DATABASE_URL = os.environ.get("AUTHSVC_TEST_DATABASE_URL", "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, run only the tests that reach a database: those using the ``app``
    fixture (through ``database_url``) and those marked ``database``. The others (scope
    grammar, policy tables, certificates, ...) gave the same result on SQLite, in the same run."""
    if not TEST_DATABASE_URL:
        return
    kept, dropped = [], []
    for item in items:
        reaches = ("database_url" in getattr(item, "fixturenames", ())
                   or item.get_closest_marker("database") is not None)
        (kept if reaches else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def database_url() -> str:
    """The shared test database, emptied and migrated once per run; "" means SQLite."""
    if not TEST_DATABASE_URL:
        return ""
    empty_postgres_database(TEST_DATABASE_URL)
    engine = create_engine(TEST_DATABASE_URL)
    upgrade(engine)
    engine.dispose()
    return TEST_DATABASE_URL


def empty_tables() -> None:
    """Every row gone and every id counting from 1 again: DELETE, children first, and the
    sequences restarted (TRUNCATE does the same ten times slower on tables this small)."""
    with db.engine.begin() as connection:
        sequences = connection.execute(text(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
        )).scalars().all()
        connection.exec_driver_sql("; ".join(
            [f'DELETE FROM "{table.name}"'  # noqa: S608 - our own tables' names
             for table in reversed(db.metadata.sorted_tables)]
            + [f'ALTER SEQUENCE "{name}" RESTART' for name in sequences]))


@pytest.fixture
def app(request: pytest.FixtureRequest, tmp_path: Path, certs_dir: Path, database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("AUTHSVC_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("AUTHSVC_CERTS_DIR", str(certs_dir))
    marker = request.node.get_closest_marker("app_config")
    settings = {**TEST_CONFIG, "DATABASE_URL": database_url,
                **(marker.kwargs if marker else {})}
    app = create_app(settings)
    with app.app_context():
        if database_url:
            empty_tables()
        else:
            db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def state(app: Flask) -> Iterator[Services]:
    with app.app_context():
        yield services_of(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def make_user(app: Flask) -> Callable[..., str]:
    def make(name: str, *, admin: bool = False, disabled: bool = False) -> str:
        with app.app_context():
            accounts = services_of(app).accounts
            accounts.create_user(name, PASSWORD, admin=admin)
            if disabled:
                accounts.set_disabled(name)
        return name

    return make


@pytest.fixture
def decode(certs_dir: Path) -> Callable[[str], dict[str, Any]]:
    """Verify a token the way the registry does: signature, issuer and audience."""
    public_key = CertPaths(certs_dir).signing.read_bytes()
    from cryptography import x509

    key = x509.load_pem_x509_certificate(public_key).public_key()

    def decode_token(token: str, audience: str = "registry") -> dict[str, Any]:
        return jwt.decode(token, key, algorithms=["ES256", "RS256"], audience=audience,  # type: ignore[arg-type]
                          issuer="authsvc")

    return decode_token

"""Running ``authsvc serve`` processes for the replica, crash and load tests."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from authsvc.db.schema import empty_postgres_database

from .processes import (
    Service,
    console_script,
    free_port,
    https_status,
    site_environment,
    start_service,
    wait_for,
)

PG_BASE = os.environ.get("AUTHSVC_TEST_PG_BASE", "postgresql+psycopg://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("AUTHSVC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ADMIN = ("admin", "admin-password-1")


def authsvc_executable() -> str:
    found = console_script("authsvc")
    assert found is not None, "the authsvc console script is not installed"
    return found


def fresh_postgres_database(name: str) -> str:
    """An empty PostgreSQL database for one test; returns its URL."""
    url = f"{PG_BASE}/{name}"
    empty_postgres_database(url)
    return url


@dataclass
class Site:
    """One authsvc deployment: settings shared by its replicas and a CLI to manage it."""

    root: Path
    env: dict[str, str]

    @property
    def ca(self) -> Path:
        return self.root / "certs" / "ca.pem"

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run([authsvc_executable(), *args], env=self.env, cwd=self.root,
                              input=stdin, capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 0, f"authsvc {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout


def make_site(root: Path, database_url: str = "", **settings: str) -> Site:
    """Certificates, schema and an admin, like `authsvc init`, for replicas to share."""
    root.mkdir(parents=True, exist_ok=True)
    env = site_environment(root, os.environ, {
        "BCRYPT_ROUNDS": "4", "REDIS_PREFIX": f"authsvc-test:{secrets.token_hex(6)}:",
        **({"DATABASE_URL": database_url} if database_url else {}), **settings})
    site = Site(root, env)
    site.cli("init", "--admin", ADMIN[0], "--admin-password-stdin", stdin=ADMIN[1] + "\n")
    return site


@dataclass
class Replica:
    service: Service
    url: str
    ca: Path

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.ca)
        return session


@contextmanager
def replica(site: Site, name: str, workers: int = 2, port: int | None = None,
            extra_env: Mapping[str, str] | None = None) -> Iterator[Replica]:
    """Run one `authsvc serve` of ``site`` on a loopback port until the block ends."""
    port = port or free_port()
    argv = [authsvc_executable(), "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers)]
    service = start_service(name, argv, {**site.env, **(extra_env or {})},
                            site.root / f"{name}.log", site.root)
    try:
        wait_for(service, lambda: https_status("127.0.0.1", port, "/nowhere", site.ca) == 404,
                 "answering HTTPS", 30)
        yield Replica(service, f"https://127.0.0.1:{port}", site.ca)
    finally:
        service.stop()

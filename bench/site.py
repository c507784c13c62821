"""The site the benchmark measures: a temporary folder with ``authsvc init``'s certificates and
database (SQLite, or an emptied PostgreSQL database), then the 10-user seed."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authsvc.pki.certs import CertPaths
from bench.procs import BenchError, executable, log, python, run_checked, stop_all
from bench.seed import ADMIN, ADMIN_PASSWORD
from tests.e2e.processes import site_environment

REPO = Path(__file__).resolve().parents[1]
BCRYPT_ROUNDS = 10
PG_URL = os.environ.get("BENCH_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/authsvc_bench")
PG_SMALL_URL = PG_URL + "_small"  # growth mode's 10-user site
#: PostgreSQL databases made by this run; dropped at the end unless --keep.
CREATED_DATABASES: list[str] = []


@dataclass
class Site:
    root: Path
    env: dict[str, str]
    database: str
    url: str
    #: Where the authsvc under test (and the bench package the servers use) is imported from:
    #: this checkout, or a ``git archive`` of ``--ref`` in the temporary folder.
    src: Path

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    @property
    def ca(self) -> Path:
        return CertPaths(self.certs).ca


def seed_result(output: str) -> Any:
    """The JSON on bench.seed's ``RESULT`` line (None without one)."""
    for line in output.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return None


def make_site(root: Path, database: str, server_threads: int, src: Path, pg_url: str = PG_URL,
              settings: dict[str, str] | None = None) -> Site:
    """``authsvc init`` then the 10-user seed, with BCRYPT_ROUNDS=10 for authsvc and any
    ``--set`` settings."""
    root.mkdir(parents=True)
    env = site_environment(root, os.environ, {
        "BCRYPT_ROUNDS": str(BCRYPT_ROUNDS), "THREADS": str(server_threads),
        **(settings or {})})
    env["PYTHONPATH"] = str(src)
    if database == "postgresql":
        run_checked([python(), "-m", "bench.seed", "reset-postgres", pg_url], env, src)
        env["AUTHSVC_DATABASE_URL"] = pg_url
        url = pg_url
        if pg_url not in CREATED_DATABASES:
            CREATED_DATABASES.append(pg_url)
    else:
        url = f"sqlite:///{root / 'instance' / 'authsvc.db'}"
    run_checked([executable("authsvc"), "init", "--admin", ADMIN, "--admin-password-stdin"],
                env, root, stdin=f"{ADMIN_PASSWORD}\n")
    counts = seed_result(run_checked([python(), "-m", "bench.seed", "small"], env, src))
    log(f"site ready ({database}): {counts}")
    return Site(root, env, database, url, src)


def drop_databases() -> None:
    """Drop the PostgreSQL databases this run made."""
    for url in CREATED_DATABASES:
        try:
            run_checked([python(), "-m", "bench.seed", "drop-postgres", url],
                        {**os.environ, "PYTHONPATH": str(REPO)}, REPO)
        except (BenchError, OSError, KeyboardInterrupt) as e:
            print(f"bench: could not drop {url.rsplit('/', 1)[-1]}: {e}")
        finally:
            stop_all()

"""Concurrency and faults against real `authsvc serve` processes, on SQLite and PostgreSQL:
token requests and admin writes at once get no errors, and a SIGKILL in the middle of admin
writes leaves a consistent database."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from .servers import ADMIN, Replica, Site, fresh_postgres_database, make_site, replica

pytestmark = pytest.mark.e2e
PASSWORD = "alice-password-1"
BACKENDS = ["sqlite", "postgresql"]


def build_site(root: Path, backend: str) -> Site:
    url = fresh_postgres_database(f"authsvc_{root.name[:20]}") if backend == "postgresql" else ""
    site = make_site(root, url, LOCKOUT_ATTEMPTS="0", LOCKOUT_ADDRESS_ATTEMPTS="0")
    site.cli("user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    site.cli("repo", "add", "alice/public", "--public")
    return site


def run_threads(workers: list[Callable[[], list[int]]]) -> Counter[int]:
    results: list[list[int]] = [[] for _ in workers]

    def run(index: int) -> None:
        results[index] = workers[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a load thread hung"
    return Counter(status for statuses in results for status in statuses)


@pytest.mark.parametrize("backend", BACKENDS)
def test_tokens_and_admin_writes_at_once_get_no_errors(tmp_path: Path, backend: str) -> None:
    site = build_site(tmp_path / f"load-{backend}", backend)
    rounds = 40
    with replica(site, "load", workers=2) as server:

        def tokens(auth: tuple[str, str] | None) -> Callable[[], list[int]]:
            def go() -> list[int]:
                session = server.session()
                return [session.get(f"{server.url}/token", auth=auth, params={
                    "service": "registry",
                    "scope": f"repository:alice/app{i % 5}:pull,push"}).status_code
                    for i in range(rounds)]
            return go

        def writes(prefix: str) -> Callable[[], list[int]]:
            def go() -> list[int]:
                session = server.session()
                statuses = []
                for i in range(rounds // 2):
                    name = f"alice/{prefix}{i}"
                    statuses.append(session.post(f"{server.url}/api/v1/repositories", json={
                        "name": name}, auth=ADMIN).status_code)
                    statuses.append(session.put(
                        f"{server.url}/api/v1/repositories/{name}/-/grants/alice",
                        json={"actions": ["pull"]}, auth=ADMIN).status_code)
                return statuses
            return go

        counts = run_threads([tokens(("alice", PASSWORD)), tokens(("alice", PASSWORD)),
                              tokens(None), tokens(None), writes("w"), writes("v")])
        assert set(counts) <= {200, 201}, (counts, server.service.log_tail())
        assert counts[200] + counts[201] == 4 * rounds + 2 * rounds
        listed = server.session().get(f"{server.url}/api/v1/repositories", auth=ADMIN,
                                      params={"q": "alice/", "per_page": 100}).json()
        # the written ones, alice/public, and alice/app0…4 registered by alice's push tokens
        assert listed["total"] == rounds + 1 + 5


def count_rows(site: Site, backend: str, query: str) -> int:
    if backend == "sqlite":
        with sqlite3.connect(site.root / "instance" / "authsvc.db") as connection:
            return int(connection.execute(query).fetchone()[0])
    from sqlalchemy import create_engine, text

    engine = create_engine(site.env["AUTHSVC_DATABASE_URL"])
    with engine.connect() as connection:
        value = int(connection.execute(text(query)).scalar_one())
    engine.dispose()
    return value


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_during_admin_writes_leaves_a_consistent_database(tmp_path: Path,
                                                                   backend: str) -> None:
    site = build_site(tmp_path / f"kill-{backend}", backend)
    acknowledged: list[str] = []
    stop = threading.Event()

    def write_users(server: Replica) -> None:
        session = server.session()
        i = 0
        while not stop.is_set():
            name = f"user{i}"
            try:
                response = session.post(f"{server.url}/api/v1/users", auth=ADMIN, timeout=10,
                                        json={"username": name, "password": PASSWORD})
            except requests.RequestException:
                return
            if response.status_code == 201:
                acknowledged.append(name)
            i += 1

    with replica(site, "doomed", workers=1) as server:
        writer = threading.Thread(target=write_users, args=(server,))
        writer.start()
        deadline = time.monotonic() + 20
        while len(acknowledged) < 15 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(server.service.pid, signal.SIGKILL)
        stop.set()
        writer.join(timeout=30)
    assert len(acknowledged) >= 15

    if backend == "sqlite":
        with sqlite3.connect(site.root / "instance" / "authsvc.db") as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    users = count_rows(site, backend, "SELECT count(*) FROM users WHERE username LIKE 'user%'")
    created = count_rows(site, backend, "SELECT count(*) FROM audit_events "
                                        "WHERE action = 'user.created' AND target LIKE 'user%'")
    assert users == created
    assert len(acknowledged) <= users <= len(acknowledged) + 1

    with replica(site, "restarted", workers=1) as server:
        session = server.session()
        listed = session.get(f"{server.url}/api/v1/users", auth=ADMIN,
                             params={"per_page": 100}).json()
        names = {u["username"] for u in listed["items"]}
        assert set(acknowledged) <= names
        last = acknowledged[-1]
        assert session.get(f"{server.url}/api/v1/me", auth=(last, PASSWORD)).status_code == 200
        again = session.post(f"{server.url}/api/v1/users", auth=ADMIN,
                             json={"username": "after-crash", "password": PASSWORD})
        assert again.status_code == 201

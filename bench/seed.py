"""Seeding the benchmark's authsvc site. Run by the benchmark (``bench.site``) in a subprocess
with the site's ``AUTHSVC_*`` environment, after ``authsvc init``::

    python -m bench.seed small                  # the 10-user case, through authsvc's services
    python -m bench.seed bulk URL --scale 1.0   # growth: 100k users, 10k namespaces, 1M grants
    python -m bench.seed search URL --scale 1.0 # search: 100k repositories with tags
    python -m bench.seed reset-postgres URL     # create the database if missing, empty it
    python -m bench.seed drop-postgres URL
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, func, insert, select, text
from sqlalchemy.engine import Engine, make_url

from authsvc.db.services import services_of

USER, PASSWORD = "alice", "alice-bench-password"
ADMIN, ADMIN_PASSWORD = "admin", "admin-bench-password"
OTHER_USERS = ("bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan")
PUBLIC_REPO = "alice/public"
PRIVATE_REPO = "alice/app"
BURST_REPOS = tuple(f"alice/app{i}" for i in range(10))


def seed_small() -> dict[str, int]:
    """The 10-user case (admin, alice and 8 more) with repositories and grants, through the
    same services the CLI and the API use."""
    from authsvc.app import create_app

    app = create_app()
    with app.app_context():
        state = services_of(app)
        state.accounts.create_user(USER, PASSWORD)
        for name in OTHER_USERS:
            state.accounts.create_user(name, f"{name}-bench-password")
        state.repos.create(PUBLIC_REPO, "public")
        state.repos.create(PRIVATE_REPO, "private")
        for name in BURST_REPOS:
            state.repos.create(name, "private")
        for name in OTHER_USERS:
            state.repos.create(f"{name}/base", "public")
            state.repos.create(f"{name}/tool", "private")
        state.grants.grant("bob", PRIVATE_REPO, "pull")
        state.grants.grant("carol", "alice/*", "pull,push")
        state.grants.grant(USER, "bob/tool", "pull")
        state.grants.grant(USER, "carol/*", "pull")
        state.grants.grant("dave", "alice/app3", "*")
        return {"users": state.accounts.count_users(),
                "repositories": state.repos.search()[1],
                "grants": len(state.grants.list_grants())}


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def insert_rows(engine: Engine, table: Any, rows: Iterator[dict[str, Any]], total: int,
                label: str, batch_size: int = 10_000) -> int:
    """Insert ``rows`` into ``table`` in batches of ``batch_size``, one transaction each,
    printing progress lines (``  seed:``); returns how many."""
    done, started, last = 0, time.monotonic(), 0.0
    for batch in _batches(rows, batch_size):
        with engine.begin() as connection:
            connection.execute(insert(table), batch)
        done += len(batch)
        now = time.monotonic()
        if now - last > 2 or done == total:
            last = now
            rate = done / max(now - started, 1e-9)
            print(f"  seed: {label:<15} {done:>9,}/{total:,}  {rate:,.0f} rows/s", flush=True)
    return done


def seed_bulk(url: str, scale: float, rounds: int) -> dict[str, Any]:
    """Growth data straight into authsvc's tables (SQLAlchemy Core, batches of 10k rows):

    * users ``u000000``…: 100k × scale, all with one cost-``rounds`` bcrypt hash;
    * namespaces: the first 10k × scale users own 10 repositories each (every 10th public);
    * grants: 10 per user, spread over those repositories and ``ns/*`` targets (1M × scale),
      plus hot targets: every 100th user holds a grant on ``alice/*`` and every 100th (offset)
      on ``alice/app``; alice holds 50 grants in other namespaces;
    * one refresh token per user (random hashes), so the refresh lookup has a big table too.
    """
    import bcrypt

    from authsvc.db.models import Grant, RefreshToken, Repository, User

    users = max(10, int(100_000 * scale))
    namespaces = max(1, min(users, int(10_000 * scale)))
    repos_per_ns = 10
    grants_per_user = 10
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        # A page cache for the seeding connection that holds the indexes being filled (SQLite's
        # 2 MB default: 40k grants/s fell to 16k by 2M rows at --scale 10); not authsvc's.
        event.listen(engine, "connect",
                     lambda connection, _: connection.execute("PRAGMA cache_size=-1000000"))
    now = datetime.now(UTC)
    password_hash = bcrypt.hashpw(b"growth-bench-password", bcrypt.gensalt(rounds)).decode()
    started = time.monotonic()
    counts: dict[str, Any] = {}

    def name(i: int) -> str:
        return f"u{i:06d}"

    counts["users"] = insert_rows(engine, User.__table__, (
        {"username": name(i), "password_hash": password_hash, "admin": False,
         "disabled": False, "robot": False, "created_at": now} for i in range(users)),
        users, "users")
    with engine.connect() as connection:
        ids = dict(connection.execute(select(User.username, User.id)).all())
    repo_names = [f"{name(n)}/r{j}" for n in range(namespaces) for j in range(repos_per_ns)]
    counts["repositories"] = insert_rows(engine, Repository.__table__, (
        {"name": repo, "visibility": "public" if k % 10 == 0 else "private", "created_at": now}
        for k, repo in enumerate(repo_names)), len(repo_names), "repositories")
    counts["namespaces"] = namespaces
    targets = repo_names + [f"{name(n)}/*" for n in range(namespaces)]

    def grant_rows() -> Iterator[dict[str, Any]]:
        for u in range(users):
            seen: set[int] = set()
            k = 0
            while len(seen) < min(grants_per_user, len(targets)):
                seen.add((u * 7919 + k * 10007) % len(targets))
                k += 1
            for t in seen:
                yield {"username": name(u), "target": targets[t],
                       "actions": "pull" if t % 3 else "pull,push", "created_at": now}
            if u % 100 == 0:
                yield {"username": name(u), "target": "alice/*", "actions": "pull",
                       "created_at": now}
            if u % 100 == 50:
                yield {"username": name(u), "target": PRIVATE_REPO, "actions": "pull",
                       "created_at": now}
        alice_targets = {targets[(i * 104729) % len(targets)] for i in range(50)}
        for target in sorted(alice_targets):
            yield {"username": USER, "target": target, "actions": "pull", "created_at": now}

    expected = users * min(grants_per_user, len(targets)) + (users + 99) // 100 + (
        users + 49) // 100 + 50
    counts["grants"] = insert_rows(engine, Grant.__table__, grant_rows(), expected, "grants")
    expires = now + timedelta(days=90)
    counts["refresh_tokens"] = insert_rows(engine, RefreshToken.__table__, (
        {"user_id": ids[name(u)], "secret_hash": hashlib.sha256(f"bench-{u}".encode()).hexdigest(),
         "service": "registry", "client_id": "docker", "created_at": now, "expires_at": expires,
         "last_used_at": None} for u in range(users)), users, "refresh tokens")
    if engine.dialect.name == "postgresql":
        # What autovacuum would have done on a real server by now; SQLite is left as authsvc
        # leaves it (authsvc never runs ANALYZE there).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    with engine.connect() as connection:
        for table in (User, Repository, Grant, RefreshToken):
            counts[f"total_{table.__tablename__}"] = connection.execute(
                select(func.count()).select_from(table)).scalar_one()
    counts["database_mib"] = round(database_bytes(engine) / 2**20)
    engine.dispose()
    counts["seconds"] = round(time.monotonic() - started, 1)
    return counts


def database_bytes(engine: Engine) -> int:
    """The database's size on disk: SQLite's file and its write-ahead log, or PostgreSQL's
    ``pg_database_size``."""
    if engine.dialect.name == "sqlite":
        database = str(engine.url.database)
        return sum(Path(database + suffix).stat().st_size for suffix in ("", "-wal")
                   if Path(database + suffix).exists())
    with engine.connect() as connection:
        return int(connection.execute(
            text("SELECT pg_database_size(current_database())")).scalar_one())


def reset_postgres(url: str) -> None:
    """Create the database if missing and empty it."""
    from authsvc.db.schema import empty_postgres_database

    empty_postgres_database(url)


def drop_postgres(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.seed")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("small")
    bulk = sub.add_parser("bulk")
    bulk.add_argument("url")
    bulk.add_argument("--scale", type=float, default=1.0)
    bulk.add_argument("--bcrypt-rounds", type=int, default=10)
    search = sub.add_parser("search")
    search.add_argument("url")
    search.add_argument("--scale", type=float, default=1.0)
    search.add_argument("--bcrypt-rounds", type=int, default=10)
    sub.add_parser("reset-postgres").add_argument("url")
    sub.add_parser("drop-postgres").add_argument("url")
    args = parser.parse_args(argv)
    if args.command == "small":
        result: Any = seed_small()
    elif args.command == "bulk":
        result = seed_bulk(args.url, args.scale, args.bcrypt_rounds)
    elif args.command == "search":
        from bench.search_seed import seed_search

        result = seed_search(args.url, args.scale, args.bcrypt_rounds)
    elif args.command == "reset-postgres":
        reset_postgres(args.url)
        result = None
    else:
        drop_postgres(args.url)
        result = None
    print("RESULT " + json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()

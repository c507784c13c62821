"""The search benchmark's data (``python -m bench.seed search URL --scale S``), straight into
authsvc's tables with SQLAlchemy Core, after the 10-user seed:

* 10k × scale users ``ns0``…, each owning the namespace of that name with 10 repositories:
  ``ns17/app3`` mostly, a common word in about one in seven (``ns17/nginx``), a rare word in
  one in 500 (``ns4250/narwhal``; each rare word at least once); about 30 % public, each with
  a description, a pull count, most with a last push, and 1–4 tags in ``tags``;
* grants: alice (the measured user) holds pull on every 331st repository and on ``ns5/*``;
  every namespace owner holds three grants elsewhere.

The names and words are also what ``bench.search`` queries for.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine

from bench.seed import USER, insert_rows

REPOS_PER_NAMESPACE = 10
#: Each in about 1 % of the repository names.
WORDS = ("nginx", "redis", "postgres", "api-gateway", "frontend", "backend", "worker",
         "billing", "auth", "metrics", "search", "docs")
#: Each in 10 (× scale) repository names.
RARE_WORDS = ("narwhal", "axolotl", "pangolin", "quokka", "capybara", "okapi", "tapir",
              "wombat", "ocelot", "manatee", "marmoset", "gecko", "lemur", "ibex", "dugong",
              "kinkajou", "numbat", "serval", "tarsier", "zorilla")
#: In no repository name.
MISSING_WORDS = ("kumquat", "xylophone", "zeppelin", "quasar", "fjord", "bazooka", "jukebox",
                 "walrus", "yodel", "vortex", "gizmo", "plinth", "snorkel", "trombone",
                 "umlaut", "wigwam", "yeti", "zither", "haiku", "igloo")
#: alice holds pull on every this-many-th repository.
ALICE_GRANT_EVERY = 331
ALICE_NAMESPACE_GRANT = "ns5/*"
SUMMARIES = ("builds and serves {w}", "the {w} image of team {ns}", "{w}, patched nightly",
             "{w} with our certificates baked in", "internal {w} for staging and production")


def namespace_count(scale: float) -> int:
    return max(10, int(10_000 * scale))


def rare_every(repos: int) -> int:
    """One in this many of ``repos`` repositories has a rare word: each word in 10 of 100k,
    and at least in one."""
    return max(REPOS_PER_NAMESPACE, min(500, repos // len(RARE_WORDS)))


def repository(k: int, rare: int = 500) -> tuple[str, str]:
    """The name of the ``k``-th seeded repository and the word in it (a rare word in one of
    ``rare``)."""
    namespace, j = divmod(k, REPOS_PER_NAMESPACE)
    if k % rare == rare // 2:
        word = RARE_WORDS[(k // rare) % len(RARE_WORDS)]
    elif k % 7 == 3:
        word = WORDS[(k // 7) % len(WORDS)]
    else:
        word = f"app{j}"
    return f"ns{namespace}/{word}", word


def _repository_rows(count: int, now: datetime) -> Iterator[dict[str, Any]]:
    for k in range(count):
        name, word = repository(k, rare_every(count))
        namespace = name.split("/")[0]
        mixed = (k * 2654435761) >> 7
        yield {"name": name, "visibility": "public" if mixed % 10 < 3 else "private",
               "created_at": now - timedelta(days=400),
               "description": SUMMARIES[k % len(SUMMARIES)].format(w=word, ns=namespace),
               "pushed_at": None if k % 5 == 4 else now - timedelta(minutes=mixed % 525_600),
               "pull_count": mixed % 10_000, "last_pulled_at": None}


def _tag_rows(repos: list[tuple[int, str, datetime | None]]) -> Iterator[dict[str, Any]]:
    for repo_id, name, pushed_at in repos:
        for t in range(repo_id % 4 + 1):
            yield {"repository_id": repo_id, "name": "latest" if t == 0 else f"v1.{t}",
                   "digest": "sha256:" + hashlib.sha256(f"{repo_id}-{t}".encode()).hexdigest(),
                   "media_type": "application/vnd.oci.image.manifest.v1+json",
                   "size": (repo_id * 7919 + t * 104729) % 500_000_000, "pushed_at": pushed_at,
                   "pushed_by": name.split("/")[0]}


def _grant_rows(namespaces: int, repos: int, now: datetime) -> Iterator[dict[str, Any]]:
    rare = rare_every(repos)
    for k in range(0, repos, ALICE_GRANT_EVERY):
        yield {"username": USER, "target": repository(k, rare)[0], "actions": "pull",
               "created_at": now}
    yield {"username": USER, "target": ALICE_NAMESPACE_GRANT, "actions": "pull",
           "created_at": now}
    for n in range(namespaces):
        others = {(n * 7 + 1) % namespaces, (n * 13 + 3) % namespaces, (n * 31 + 5) % namespaces}
        for i, other in enumerate(sorted(others - {n})):
            k = other * REPOS_PER_NAMESPACE + i
            target = f"ns{other}/*" if i == 1 else repository(k, rare)[0]
            yield {"username": f"ns{n}", "target": target,
                   "actions": "pull" if i else "pull,push", "created_at": now}


def database_size(engine: Engine) -> dict[str, Any]:
    """The whole database's size in MiB, and the repositories table's with its indexes where
    the database tells it (PostgreSQL, SQLite with the ``dbstat`` table)."""
    mib = 1024 * 1024
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            whole, repos = connection.execute(text(
                "SELECT pg_database_size(current_database()), "
                "pg_total_relation_size('repositories')")).one()
            return {"database_mib": round(whole / mib, 1), "repositories_mib": round(
                repos / mib, 1)}
        pages = connection.execute(text("PRAGMA page_count")).scalar_one()
        page_size = connection.execute(text("PRAGMA page_size")).scalar_one()
        size: dict[str, Any] = {"database_mib": round(pages * page_size / mib, 1)}
        try:
            repos = connection.execute(text(
                "SELECT sum(pgsize) FROM dbstat WHERE name = 'repositories' OR name IN "
                "(SELECT name FROM sqlite_master WHERE tbl_name = 'repositories')")).scalar()
            size["repositories_mib"] = round((repos or 0) / mib, 1)
        except Exception:  # no dbstat in this SQLite
            size["repositories_mib"] = None
        return size


def seed_search(url: str, scale: float, rounds: int) -> dict[str, Any]:
    """Insert the search data (see the module) into the database at ``url``; returns the
    counts, the seconds it took and the database's size."""
    import bcrypt

    from authsvc.db.models import Grant, Repository, Tag, User

    namespaces = namespace_count(scale)
    repos = namespaces * REPOS_PER_NAMESPACE
    engine = create_engine(url)
    now = datetime.now(UTC)
    password_hash = bcrypt.hashpw(b"search-bench-password", bcrypt.gensalt(rounds)).decode()
    started = time.monotonic()
    counts: dict[str, Any] = {"namespaces": namespaces}
    counts["users"] = insert_rows(engine, User.__table__, (
        {"username": f"ns{n}", "password_hash": password_hash, "admin": False,
         "disabled": False, "robot": False, "created_at": now} for n in range(namespaces)),
        namespaces, "users")
    counts["repositories"] = insert_rows(engine, Repository.__table__,
                                         _repository_rows(repos, now), repos, "repositories")
    with engine.connect() as connection:
        rows = [(int(i), str(n), p) for i, n, p in connection.execute(
            select(Repository.id, Repository.name, Repository.pushed_at)
            .where(Repository.name.like("ns%")))]
    tags = sum(repo_id % 4 + 1 for repo_id, _, _ in rows)
    counts["tags"] = insert_rows(engine, Tag.__table__, _tag_rows(rows), tags, "tags")
    grants = list(_grant_rows(namespaces, repos, now))
    counts["grants"] = insert_rows(engine, Grant.__table__, iter(grants), len(grants), "grants")
    if engine.dialect.name == "postgresql":
        # What autovacuum would have done by now; SQLite is left as authsvc leaves it.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    counts["seconds"] = round(time.monotonic() - started, 1)
    with engine.connect() as connection:
        for table in (User, Repository, Tag, Grant):
            counts[f"total_{table.__tablename__}"] = connection.execute(
                select(func.count()).select_from(table)).scalar_one()
        counts["alice_grants"] = connection.execute(select(func.count()).select_from(Grant)
                                                    .where(Grant.username == USER)).scalar_one()
    counts.update(database_size(engine))
    engine.dispose()
    return counts

"""What the registry holds: tags with their digests and sizes, pushes, pulls and deletes.

The registry's notifications (``authsvc.core.registry_events``) are recorded by
``EventRecorder``: the requests of one process hand their events to one writer thread that
writes what arrived within a few milliseconds in one transaction (as the audit trail batches
issued tokens), and each request is answered only once its events are stored, so an answer of
200 never loses an event the registry will not send again. Recording is idempotent: an event id
already stored is skipped (the registry retries a delivery it thinks failed).

``Catalog`` reads the records and changes them one by one for ``registry sync`` and deletes.
"""

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, case, delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from authsvc.core.opaque_secrets import as_utc, utc_now
from authsvc.core.registry_events import MANIFEST_MEDIA_TYPES, RegistryEvent
from authsvc.db.audit import Audit, Event
from authsvc.db.models import DbSession, Manifest, RegistryEventSeen, Repository, Tag, engine_of
from authsvc.db.repositories import Repositories

log = logging.getLogger(__name__)

#: How long the ids of recorded notifications are kept (the registry retries for as long as
#: it runs, but a restart forgets its queue).
SEEN_DAYS = 30
#: The subjects of the tokens authsvc signs for its own calls to the registry
#: (``Services.registry_client``): no user name has a colon.
SELF_PREFIX = "authsvc:"
#: The largest size a BIGINT column holds.
MAX_SIZE = 2**63 - 1
#: Manifest media types of an index (a manifest list): its size is that of its images.
INDEX_MEDIA_TYPES = frozenset({
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
})


@dataclass(frozen=True)
class TagRecord:
    repository: str
    tag: str
    digest: str
    media_type: str
    size: int
    pushed_at: datetime | None
    pushed_by: str


@dataclass
class Outcome:
    """What recording one batch of events did."""

    recorded: int = 0
    duplicates: int = 0


class Catalog:
    """Tag records over one SQLAlchemy session (the sync and delete commands and the API)."""

    def __init__(self, session: DbSession, audit: Audit, repos: Repositories) -> None:
        self.session = session
        self.audit = audit
        self.repos = repos

    def tags(self, repository: str) -> list[TagRecord]:
        """The tags of ``repository`` sorted by name ([] when none or unknown)."""
        rows = self.session.execute(
            select(Tag).join(Repository, Tag.repository_id == Repository.id)
            .where(Repository.name == repository).order_by(Tag.name)).scalars().all()
        return [_record(repository, row) for row in rows]

    def tag(self, repository: str, tag: str) -> TagRecord | None:
        """One tag of ``repository``, or None."""
        return next((t for t in self.tags(repository) if t.tag == tag), None)

    def all_tags(self) -> dict[str, dict[str, TagRecord]]:
        """Every tag record: repository name → tag → record."""
        found: dict[str, dict[str, TagRecord]] = {}
        rows = self.session.execute(
            select(Repository.name, Tag).join(Tag, Tag.repository_id == Repository.id)).all()
        for name, row in rows:
            found.setdefault(name, {})[row.name] = _record(name, row)
        return found

    def tag_counts(self, repository_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """Number of tags and the total size of their distinct images per repository id
        (missing: none)."""
        if not repository_ids:
            return {}
        counts = dict(self.session.execute(
            select(Tag.repository_id, func.count(Tag.id))
            .where(Tag.repository_id.in_(repository_ids)).group_by(Tag.repository_id)).all())
        # an image two tags share is counted once
        images = select(Tag.repository_id, Tag.digest, func.max(Tag.size).label("size")).where(
            Tag.repository_id.in_(repository_ids)).group_by(Tag.repository_id, Tag.digest)
        inner = images.subquery()
        sizes = dict(self.session.execute(
            select(inner.c.repository_id, func.sum(inner.c.size))
            .group_by(inner.c.repository_id)).all())
        return {repo_id: (int(count), int(sizes.get(repo_id) or 0))
                for repo_id, count in counts.items()}

    def _repository(self, name: str) -> Repository:
        self.repos.ensure(name)
        return self.repos.get(name)

    def put_tag(self, repository: str, tag: str, digest: str, media_type: str, size: int, *,
                pushed_at: datetime | None = None, pushed_by: str = "") -> None:
        """Record that ``repository:tag`` is ``digest`` (registering the repository with the
        default visibility when new) and commit."""
        repo = self._repository(repository)
        row = self.session.execute(select(Tag).where(
            Tag.repository_id == repo.id, Tag.name == tag)).scalar()
        if row is None:
            row = Tag(repository_id=repo.id, name=tag)
            self.session.add(row)
        row.digest, row.media_type, row.size = digest, media_type, size
        row.pushed_at, row.pushed_by = pushed_at, pushed_by
        if pushed_at is not None and (repo.pushed_at is None
                                      or as_utc(repo.pushed_at) < as_utc(pushed_at)):
            repo.pushed_at = pushed_at
        self.session.commit()

    def drop_tags(self, repository: str, tags: Iterable[str]) -> None:
        """Forget ``tags`` of ``repository`` and commit."""
        repo = self.repos.find(repository)
        names = list(tags)
        if repo is not None and names:
            self.session.execute(delete(Tag).where(Tag.repository_id == repo.id,
                                                   Tag.name.in_(names)))
        self.session.commit()

    def drop_digest(self, repository: str, digest: str) -> list[str]:
        """Forget the tags of ``repository`` that point to ``digest``; returns their names."""
        gone = [t.tag for t in self.tags(repository) if t.digest == digest]
        repo = self.repos.find(repository)
        if repo is not None:
            self.session.execute(delete(Manifest).where(Manifest.repository_id == repo.id,
                                                        Manifest.digest == digest))
        self.drop_tags(repository, gone)
        return gone

    def drop_repository(self, repository: str) -> list[str]:
        """Forget every tag of ``repository``; returns their names."""
        gone = [t.tag for t in self.tags(repository)]
        repo = self.repos.find(repository)
        if repo is not None:
            self.session.execute(delete(Manifest).where(Manifest.repository_id == repo.id))
        self.drop_tags(repository, gone)
        return gone


def _record(repository: str, row: Tag) -> TagRecord:
    return TagRecord(repository, row.name, row.digest, row.media_type, row.size, row.pushed_at,
                     row.pushed_by)


# -- recording notifications ----------------------------------------------------------------

def _repository_id(connection: Connection, name: str, visibility: str, audit: Audit,
                   actor: str) -> int:
    """The id of repository ``name``, registered with ``visibility`` when new."""
    found = connection.execute(select(Repository.id).where(Repository.name == name)).scalar()
    if found is not None:
        return int(found)
    new_id = connection.execute(insert(Repository).values(
        name=name, visibility=visibility, created_at=utc_now(), description="",
        pull_count=0).returning(Repository.id)).scalar_one()
    audit.write(connection, Event("repository.registered", target=name, detail=visibility),
                actor=actor or "registry")
    return int(new_id)


def _image_size(connection: Connection, repo_id: int, event: RegistryEvent) -> int:
    """The size of the image ``event`` pushed: config and layers; for an index, the sum of
    its platform images that were pushed before it (their references otherwise)."""
    if event.media_type not in INDEX_MEDIA_TYPES or not event.references:
        return event.image_size
    children = [r for r in event.references if r.media_type in MANIFEST_MEDIA_TYPES]
    rows = connection.execute(select(Manifest.digest, Manifest.size).where(
        Manifest.repository_id == repo_id, Manifest.digest.in_([c.digest for c in children])))
    known = {digest: size for digest, size in rows}
    return sum(known.get(c.digest, c.size) for c in children) or event.image_size


def _apply(connection: Connection, event: RegistryEvent, visibility: str, audit: Audit) -> None:
    """Change the records as ``event`` says (its id is new)."""
    if event.action == "delete":
        repo_id = connection.execute(select(Repository.id).where(
            Repository.name == event.repository)).scalar()
        if repo_id is None:
            return
        where = [Tag.repository_id == repo_id]
        if event.digest:
            where.append(Tag.digest == event.digest)
            connection.execute(delete(Manifest).where(Manifest.repository_id == repo_id,
                                                      Manifest.digest == event.digest))
        if event.tag:
            where.append(Tag.name == event.tag)
        if not event.digest and not event.tag:
            connection.execute(delete(Manifest).where(Manifest.repository_id == repo_id))
        connection.execute(delete(Tag).where(*where))
        return
    repo_id = _repository_id(connection, event.repository, visibility, audit, event.actor)
    if event.action == "pull":
        # authsvc's own reads (sync, deletes: subject ``authsvc:…``) are nobody's pull
        if event.tag and not event.actor.startswith(SELF_PREFIX):
            connection.execute(update(Repository).where(Repository.id == repo_id).values(
                pull_count=Repository.pull_count + 1,
                last_pulled_at=case((Repository.last_pulled_at.is_(None), event.at),
                                    (Repository.last_pulled_at < event.at, event.at),
                                    else_=Repository.last_pulled_at)))
        return
    # sizes come from the registry up to 2**63 - 1 each: their sum must still fit a BIGINT
    size = min(_image_size(connection, repo_id, event), MAX_SIZE)
    manifest = connection.execute(select(Manifest.id).where(
        Manifest.repository_id == repo_id, Manifest.digest == event.digest)).scalar()
    if manifest is None:
        connection.execute(insert(Manifest).values(
            repository_id=repo_id, digest=event.digest, media_type=event.media_type, size=size))
    if not event.tag:
        return
    values = {"digest": event.digest, "media_type": event.media_type, "size": size,
              "pushed_at": event.at, "pushed_by": event.actor}
    changed = connection.execute(update(Tag).where(
        Tag.repository_id == repo_id, Tag.name == event.tag).values(**values)).rowcount
    if not changed:
        connection.execute(insert(Tag).values(repository_id=repo_id, name=event.tag, **values))
    connection.execute(update(Repository).where(
        Repository.id == repo_id,
        (Repository.pushed_at.is_(None)) | (Repository.pushed_at < event.at)).values(
        pushed_at=event.at))


def record_events(connection: Connection, events: Sequence[RegistryEvent], visibility: str,
                  audit: Audit) -> Outcome:
    """Apply the events whose ids are not stored yet, and store their ids, on ``connection``
    (the caller's transaction). Duplicates, within ``events`` or with earlier ones, count in
    ``duplicates`` and change nothing."""
    outcome = Outcome()
    ids = list(dict.fromkeys(e.id for e in events))
    seen = set(connection.execute(select(RegistryEventSeen.id).where(
        RegistryEventSeen.id.in_(ids))).scalars()) if ids else set()
    now = utc_now()
    for event in events:
        if event.id in seen:
            outcome.duplicates += 1
            continue
        seen.add(event.id)
        connection.execute(insert(RegistryEventSeen).values(id=event.id, received_at=now))
        _apply(connection, event, visibility, audit)
        outcome.recorded += 1
    return outcome


@dataclass
class _Batch:
    events: Sequence[RegistryEvent]
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None
    error: BaseException | None = None


class EventRecorder:
    """Writes notifications in group commits: one writer thread per process takes every
    batch handed in while it wrote the previous one, and writes them in one transaction."""

    def __init__(self, session: DbSession, audit: Audit, visibility: str, *,
                 wait_seconds: float = 10.0) -> None:
        self.session = session
        self.audit = audit
        self.visibility = visibility
        self.wait_seconds = wait_seconds
        self._pending: list[_Batch] = []
        self._cond = threading.Condition()
        self._engine: Engine | None = None
        self._pid: int | None = None
        self._last_prune = 0.0

    def record(self, events: Sequence[RegistryEvent]) -> Outcome:
        """Store ``events`` (needs the app context the first time) and return what was done.
        Raises the database's error when they could not be stored (the caller answers 503 and
        the registry sends them again)."""
        import os

        batch = _Batch(events)
        with self._cond:
            if self._engine is None:
                self._engine = engine_of(self.session)
            if self._pid != os.getpid():  # first use in this process (workers are forked)
                self._pid = os.getpid()
                self._pending = []
                threading.Thread(target=self._write_forever, name="registry-events",
                                 daemon=True).start()
            self._pending.append(batch)
            self._cond.notify()
        if not batch.done.wait(self.wait_seconds):
            raise TimeoutError("the registry's events were not stored in time")
        if batch.error is not None:
            raise batch.error
        assert batch.outcome is not None  # noqa: S101 - set with done
        return batch.outcome

    def _write_forever(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                batches, self._pending = self._pending, []
            self._write(batches)

    def _write(self, batches: list[_Batch]) -> None:
        assert self._engine is not None  # noqa: S101 - set before the thread starts
        try:
            with self._engine.begin() as connection:
                outcomes = [record_events(connection, b.events, self.visibility, self.audit)
                            for b in batches]
                self._prune(connection)
        except IntegrityError:
            # another replica recorded one of these ids meanwhile: write each batch alone
            if len(batches) > 1:
                for one in batches:
                    self._write([one])
                return
            self._finish(batches, error=_retry_alone(self, batches[0]))
            return
        except Exception as e:  # the writer thread must outlive any error
            log.warning("could not record %d registry notification(s): %s",
                        sum(len(b.events) for b in batches), type(e).__name__)
            self._finish(batches, error=e)
            return
        for batch, outcome in zip(batches, outcomes, strict=True):
            batch.outcome = outcome
            batch.done.set()

    def _finish(self, batches: list[_Batch], *, error: BaseException | None) -> None:
        for batch in batches:
            if batch.outcome is None:
                batch.error = error
            batch.done.set()

    def _prune(self, connection: Connection) -> None:
        """Forget the ids of notifications older than SEEN_DAYS, at most once an hour."""
        if time.monotonic() - self._last_prune < 3600:
            return
        self._last_prune = time.monotonic()
        connection.execute(delete(RegistryEventSeen).where(
            RegistryEventSeen.received_at < utc_now() - timedelta(days=SEEN_DAYS)))


def _retry_alone(recorder: EventRecorder, batch: _Batch) -> BaseException | None:
    """One more try of ``batch`` on its own (the ids that clashed are now stored, so they count
    as duplicates); returns the error if it fails again."""
    assert recorder._engine is not None  # noqa: S101
    try:
        with recorder._engine.begin() as connection:
            batch.outcome = record_events(connection, batch.events, recorder.visibility,
                                          recorder.audit)
    except SQLAlchemyError as e:
        return e
    return None

"""What the registry holds, as its notifications tell it (authsvc.db.catalog): ``record_events``
on a Core connection, the group-committing ``EventRecorder``, and ``Catalog``; on SQLite and on
PostgreSQL (AUTHSVC_TEST_DATABASE_URL). The events are parsed with ``parse_envelope`` from
envelopes shaped as distribution's bridge sends them (tests/test_registry_events.py tests the
parsing itself)."""

import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from authsvc.core.opaque_secrets import as_utc
from authsvc.core.registry_events import parse_envelope
from authsvc.db.catalog import EventRecorder, Outcome, TagRecord, record_events
from authsvc.db.models import AuditEvent, Manifest, RegistryEventSeen, Repository, Tag, db
from authsvc.db.services import Services
from tests.test_registry_events import (
    CONFIG,
    CONFIG_BLOB,
    DOCKER_MANIFEST,
    LAYER,
    LAYER_BLOB,
    OCI_INDEX,
    blob_target,
    envelope,
    go_event,
    manifest_target,
    sha256,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
V1, V2, AMD64, ARM64, INDEX = (sha256(s) for s in ("v1", "v2", "amd64", "arm64", "index"))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def go_time(moment: datetime) -> str:
    """A timestamp as Go's time.Time marshals it (nanoseconds, zone)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "789Z"


def layers(config: int, *sizes: int) -> list[dict[str, Any]]:
    """The references of an image manifest: its config and layers."""
    refs = [{"mediaType": CONFIG, "size": config, "digest": CONFIG_BLOB}]
    return refs + [{"mediaType": LAYER, "size": size, "digest": sha256(f"layer{i}")}
                   for i, size in enumerate(sizes)]


def push(event_id: str, repository: str = "alice/app", tag: str = "", digest: str = V1, *,
         minutes: float = 0, references: list[dict[str, Any]] | None = None,
         media_type: str = DOCKER_MANIFEST, actor: str = "alice") -> dict[str, Any]:
    target = manifest_target(repository, digest, tag, media_type)
    target["references"] = layers(1000, 5000) if references is None else references
    return go_event("push", target, method="PUT", actor=actor, event_id=event_id,
                    timestamp=go_time(at(minutes)))


def pull(event_id: str, repository: str = "alice/app", tag: str = "", digest: str = V1, *,
         minutes: float = 0, actor: str = "bob") -> dict[str, Any]:
    return go_event("pull", manifest_target(repository, digest, tag), actor=actor,
                    event_id=event_id, timestamp=go_time(at(minutes)))


def delete(event_id: str, repository: str = "alice/app", *, tag: str = "",
           digest: str = "") -> dict[str, Any]:
    target = {"repository": repository} | ({"tag": tag} if tag else {}) | (
        {"digest": digest} if digest else {})
    return go_event("delete", target, method="DELETE", event_id=event_id,
                    timestamp=go_time(at(60)))


def record(state: Services, *raw: dict[str, Any], visibility: str = "private") -> Outcome:
    """Parse one envelope of ``raw`` events and record it in a transaction of its own."""
    parsed = parse_envelope(envelope(*raw))
    assert parsed.rejected == ()
    with db.engine.begin() as connection:
        return record_events(connection, parsed.events, visibility, state.audit)


def outcome(result: Outcome) -> tuple[int, int]:
    return result.recorded, result.duplicates


def tags(state: Services, repository: str = "alice/app") -> dict[str, tuple[str, int]]:
    """Tag → (digest, size), read afresh."""
    db.session.rollback()
    return {t.tag: (t.digest, t.size) for t in state.catalog.tags(repository)}


def repository(name: str = "alice/app") -> dict[str, Any]:
    """The record of ``name`` (times in UTC; {} when there is none), read on a connection of
    its own."""
    with db.engine.connect() as connection:
        row = connection.execute(select(
            Repository.visibility, Repository.pushed_at, Repository.pull_count,
            Repository.last_pulled_at).where(Repository.name == name)).one_or_none()
    if row is None:
        return {}
    return {"visibility": row.visibility, "pushed_at": as_utc(row.pushed_at),
            "pull_count": row.pull_count, "last_pulled_at": as_utc(row.last_pulled_at)}


def counts() -> dict[str, int]:
    """Rows per table the recorder writes to."""
    with db.engine.connect() as connection:
        return {model.__tablename__: connection.execute(
            select(func.count()).select_from(model)).scalar_one()
            for model in (Repository, Tag, Manifest, RegistryEventSeen, AuditEvent)}


def everything(state: Services) -> dict[str, Any]:
    """Every record the events can change."""
    db.session.rollback()
    with db.engine.connect() as connection:
        repos = connection.execute(select(
            Repository.name, Repository.visibility, Repository.pushed_at, Repository.pull_count,
            Repository.last_pulled_at).order_by(Repository.name)).all()
        manifests = connection.execute(select(
            Manifest.repository_id, Manifest.digest, Manifest.size)
            .order_by(Manifest.digest)).all()
    return {"repositories": repos, "tags": state.catalog.all_tags(), "manifests": manifests,
            "counts": counts()}


def registered(name: str) -> list[tuple[str, str, str]]:
    """The ``repository.registered`` audit rows of ``name``: (actor, target, detail)."""
    with db.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(
            select(AuditEvent.actor, AuditEvent.target, AuditEvent.detail).where(
                AuditEvent.action == "repository.registered", AuditEvent.target == name))]


# -- pushes ------------------------------------------------------------------------------------

def test_a_push_records_the_tag_and_registers_the_repository_private(state: Services) -> None:
    assert outcome(record(state, push("p1", tag="latest", minutes=5))) == (1, 0)
    db.session.rollback()
    (latest,) = state.catalog.tags("alice/app")
    assert dataclasses.replace(latest, pushed_at=None) == TagRecord(
        "alice/app", "latest", V1, DOCKER_MANIFEST, 1000 + 5000, None, "alice")
    assert as_utc(latest.pushed_at) == at(5)
    assert repository() == {"visibility": "private", "pushed_at": at(5), "pull_count": 0,
                            "last_pulled_at": None}
    assert registered("alice/app") == [("alice", "alice/app", "private")]


@pytest.mark.app_config(DEFAULT_VISIBILITY="public")
def test_a_push_registers_with_the_configured_default_visibility(state: Services) -> None:
    parsed = parse_envelope(envelope(push("p1", "bob/tool", tag="v1", actor="")))
    assert outcome(state.events.record(parsed.events)) == (1, 0)
    assert repository("bob/tool")["visibility"] == "public"
    assert registered("bob/tool") == [("registry", "bob/tool", "public")]


def test_a_push_keeps_the_visibility_of_a_known_repository(state: Services) -> None:
    state.repos.create("alice/app", "public")
    before = counts()["audit_events"]
    record(state, push("p1", tag="v1"))
    assert repository()["visibility"] == "public"
    assert registered("alice/app") == []
    assert counts()["audit_events"] == before


def test_a_push_by_digest_only_registers_the_repository_and_no_tag(state: Services) -> None:
    assert outcome(record(state, push("p1", digest=AMD64, minutes=3))) == (1, 0)
    assert tags(state) == {}
    assert repository() == {"visibility": "private", "pushed_at": None, "pull_count": 0,
                            "last_pulled_at": None}


def test_a_repush_moves_the_tag_to_the_new_digest(state: Services) -> None:
    record(state, push("p1", tag="latest", digest=V1, minutes=1), push("p2", tag="v1",
                                                                        digest=V1, minutes=1))
    assert outcome(record(state, push("p3", tag="latest", digest=V2, minutes=9, actor="ci",
                                      references=layers(10, 20, 30)))) == (1, 0)
    assert tags(state) == {"latest": (V2, 60), "v1": (V1, 6000)}
    latest = state.catalog.tag("alice/app", "latest")
    assert latest is not None and latest.pushed_by == "ci" and as_utc(latest.pushed_at) == at(9)
    assert repository()["pushed_at"] == at(9)
    assert state.catalog.tag_counts([_id("alice/app")]) == {_id("alice/app"): (2, 6060)}


def test_the_repository_push_time_only_moves_forward(state: Services) -> None:
    record(state, push("p2", tag="new", digest=V2, minutes=30))
    record(state, push("p1", tag="old", digest=V1, minutes=10))  # delivered late
    assert repository()["pushed_at"] == at(30)
    old = state.catalog.tag("alice/app", "old")
    assert old is not None and as_utc(old.pushed_at) == at(10)
    record(state, push("p3", tag="newer", digest=V1, minutes=31))
    assert repository()["pushed_at"] == at(31)


# -- the size of an index ------------------------------------------------------------------------

def platform(digest: str, size: int) -> dict[str, Any]:
    return {"mediaType": OCI_MANIFEST, "size": size, "digest": digest}




def test_an_index_push_warns_nothing(state: Services) -> None:
    record(state, push("idx", tag="multi", digest=INDEX, media_type=OCI_INDEX,
                       references=[platform(AMD64, 480)]))
    assert tags(state) == {"multi": (INDEX, 480)}


def test_an_index_is_as_big_as_the_platform_images_pushed_before_it(state: Services) -> None:
    record(state, push("amd", digest=AMD64, media_type=OCI_MANIFEST,
                       references=layers(100, 1_000_000, 2_000_000)))
    record(state, push("arm", digest=ARM64, media_type=OCI_MANIFEST,
                       references=layers(200, 900_000)))
    record(state, push("idx", tag="multi", digest=INDEX, media_type=OCI_INDEX,
                       references=[platform(AMD64, 480), platform(ARM64, 470)]))
    assert tags(state) == {"multi": (INDEX, 3_000_100 + 900_200)}
    multi = state.catalog.tag("alice/app", "multi")
    assert multi is not None and multi.media_type == OCI_INDEX


def test_an_index_counts_an_unknown_platform_manifest_by_its_own_size(state: Services) -> None:
    record(state, push("amd", digest=AMD64, media_type=OCI_MANIFEST,
                       references=layers(100, 1_000_000)))
    record(state, push("idx", tag="multi", digest=INDEX, media_type=OCI_INDEX,
                       references=[platform(AMD64, 480), platform(ARM64, 470)]))
    assert tags(state) == {"multi": (INDEX, 1_000_100 + 470)}


def test_platform_images_of_another_repository_do_not_count(state: Services) -> None:
    record(state, push("amd", "bob/base", digest=AMD64, media_type=OCI_MANIFEST,
                       references=layers(100, 1_000_000)))
    record(state, push("idx", tag="multi", digest=INDEX, media_type=OCI_INDEX,
                       references=[platform(AMD64, 480)]))
    assert tags(state) == {"multi": (INDEX, 480)}


# -- pulls ---------------------------------------------------------------------------------------

def test_a_pull_by_tag_counts_and_a_pull_by_digest_does_not(state: Services) -> None:
    record(state, push("p1", tag="v1", minutes=1))
    assert outcome(record(state, pull("l1", tag="v1", minutes=20))) == (1, 0)
    assert outcome(record(state, pull("l2", minutes=30))) == (1, 0)  # the layers' manifest
    assert repository() == {"visibility": "private", "pushed_at": at(1), "pull_count": 1,
                            "last_pulled_at": at(20)}
    record(state, pull("l3", tag="v1", minutes=15))  # delivered late: counts, time stays
    assert repository()["pull_count"] == 2
    assert repository()["last_pulled_at"] == at(20)
    assert tags(state) == {"v1": (V1, 6000)}


# -- duplicates ------------------------------------------------------------------------------------

def test_the_same_event_twice_in_one_batch_counts_once(state: Services) -> None:
    record(state, push("p1", tag="v1"))
    assert outcome(record(state, pull("l1", tag="v1", minutes=5),
                          pull("l1", tag="v1", minutes=5))) == (1, 1)
    assert repository()["pull_count"] == 1


def test_an_event_sent_again_changes_nothing(state: Services) -> None:
    record(state, push("p1", tag="v1"), pull("l1", tag="v1", minutes=5))
    before = everything(state)
    assert outcome(record(state, pull("l1", tag="v1", minutes=5))) == (0, 1)
    # the same id is the same event, whatever else it says
    assert outcome(record(state, push("p1", tag="v1", digest=V2, minutes=50),
                          delete("l1", digest=V1))) == (0, 2)
    assert everything(state) == before


def test_a_batch_of_new_and_seen_events_records_the_new_ones(state: Services) -> None:
    record(state, push("p1", tag="v1"))
    assert outcome(record(state, push("p1", tag="v1"), push("p2", tag="v2", digest=V2,
                                                             minutes=1))) == (1, 1)
    assert set(tags(state)) == {"v1", "v2"}


# -- deletes ---------------------------------------------------------------------------------------

@pytest.fixture
def three_tags(state: Services) -> None:
    """alice/app: v1 and stable at V1, v2 at V2; bob/app: v1 at V1."""
    record(state, push("a1", tag="v1", digest=V1), push("a2", tag="stable", digest=V1),
           push("a3", tag="v2", digest=V2), push("b1", "bob/app", tag="v1", digest=V1))


@pytest.mark.parametrize(("event", "left"), [
    pytest.param(delete("d", digest=V1), {"v2"}, id="2.8: by digest, every tag on it"),
    pytest.param(delete("d", tag="v1"), {"stable", "v2"}, id="3.x: by tag, that tag only"),
    pytest.param(delete("d"), set(), id="3.x: the repository, every tag"),
    pytest.param(delete("d", digest=LAYER_BLOB), {"v1", "stable", "v2"},
                 id="2.8: a blob's digest, no tag"),
    pytest.param(delete("d", tag="v3"), {"v1", "stable", "v2"}, id="an unknown tag"),
])
def test_deletes(state: Services, three_tags: None, event: dict[str, Any],
                 left: set[str]) -> None:
    assert outcome(record(state, event)) == (1, 0)
    assert set(tags(state)) == left
    assert tags(state, "bob/app") == {"v1": (V1, 6000)}
    assert repository() != {}  # the record (visibility, grants) stays


def test_a_deleted_manifest_no_longer_sizes_an_index(state: Services) -> None:
    record(state, push("amd", digest=AMD64, media_type=OCI_MANIFEST,
                       references=layers(100, 1_000_000)))
    record(state, delete("d", digest=AMD64))
    record(state, push("idx", tag="multi", digest=INDEX, media_type=OCI_INDEX,
                       references=[platform(AMD64, 480)]))
    assert tags(state) == {"multi": (INDEX, 480)}


def test_a_delete_in_an_unknown_repository_registers_nothing(state: Services) -> None:
    before = counts()
    assert outcome(record(state, delete("d", "carol/app", digest=V1))) == (1, 0)
    assert repository("carol/app") == {}
    assert counts() == before | {"registry_events": before["registry_events"] + 1}


def test_blob_events_are_not_recorded(state: Services) -> None:
    parsed = parse_envelope(envelope(go_event("push", blob_target(), method="PUT")))
    assert (parsed.ignored, parsed.events) == (1, ())
    with db.engine.begin() as connection:
        assert outcome(record_events(connection, parsed.events, "private", state.audit)) == (
            0, 0)
    assert repository() == {}


# -- sizes beyond what the database holds -----------------------------------------------------

HUGE = 2**62


def test_an_image_bigger_than_a_bigint_does_not_cost_the_other_events(
        state: Services) -> None:
    events = parse_envelope(envelope(
        push("big", tag="big", references=layers(HUGE, HUGE)),
        push("ok", tag="ok", digest=V2))).events
    with db.engine.begin() as connection:
        record_events(connection, events, "private", state.audit)
    assert "ok" in tags(state)


@pytest.fixture
def recorder(state: Services) -> EventRecorder:
    """A recorder of its own that gives up after 2 s (its writer thread is a daemon)."""
    return EventRecorder(db.session, state.audit, "private", wait_seconds=2)


def test_the_recorder_keeps_writing_after_an_error(recorder: EventRecorder,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a batch raises (not only the database's errors), the caller gets it and the
    writer thread goes on with the next batch."""
    good = parse_envelope(envelope(push("ok", tag="ok", digest=V2)))
    with monkeypatch.context() as patch:
        patch.setattr("authsvc.db.catalog.record_events", broken)
        with pytest.raises(OverflowError):
            recorder.record(good.events)
    assert outcome(recorder.record(good.events)) == (1, 0)


def broken(*_args: Any) -> Any:
    raise OverflowError("Python int too large to convert to SQLite INTEGER")


# -- the recorder under concurrent requests -----------------------------------------------------

def test_concurrent_requests_record_every_event_exactly_once(app: Flask,
                                                             state: Services) -> None:
    """8 request threads × 20 envelopes: thread t pushes tags to team/app<t> and pulls them,
    and every fourth envelope also carries an event thread t+1 sends too (a retried
    delivery)."""
    threads, rounds = 8, 20

    def event(t: int, i: int) -> dict[str, Any]:
        if i % 2 == 0:
            return push(f"t{t}-{i}", f"team/app{t}", tag=f"v{i}", digest=sha256(f"{t}/{i}"),
                        minutes=i, actor="ci")
        return pull(f"t{t}-{i}", f"team/app{t}", tag=f"v{i - 1}", minutes=i)

    results: dict[int, list[tuple[int, int, int]]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def request_thread(t: int) -> None:
        mine = []
        try:
            with app.app_context():
                start.wait()
                for i in range(rounds):
                    raw = [event(t, i)] + ([event((t + 1) % threads, i)] if i % 4 == 0 else [])
                    parsed = parse_envelope(envelope(*raw))
                    got = state.events.record(parsed.events)
                    mine.append((len(raw), got.recorded, got.duplicates))
        except BaseException as e:  # reported below
            errors.append(e)
        results[t] = mine

    workers = [threading.Thread(target=request_thread, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert errors == []
    calls = [c for t in range(threads) for c in results[t]]
    assert len(calls) == threads * rounds
    assert all(sent == got + dup for sent, got, dup in calls)  # each call its own outcome
    assert sum(got for _, got, _ in calls) == threads * rounds
    assert sum(dup for _, _, dup in calls) == threads * rounds // 4
    assert counts()["registry_events"] == threads * rounds
    for t in range(threads):
        assert repository(f"team/app{t}") == {
            "visibility": "private", "pushed_at": at(rounds - 2), "pull_count": rounds // 2,
            "last_pulled_at": at(rounds - 1)}
        assert set(tags(state, f"team/app{t}")) == {f"v{i}" for i in range(0, rounds, 2)}
        assert registered(f"team/app{t}") == [("ci", f"team/app{t}", "private")]


def test_a_recorder_answers_each_call_with_its_own_outcome(state: Services) -> None:
    first = parse_envelope(envelope(push("p1", tag="v1"), push("p2", tag="v2", digest=V2)))
    assert outcome(state.events.record(first.events)) == (2, 0)
    again = parse_envelope(envelope(push("p2", tag="v2", digest=V2), pull("l1", tag="v1")))
    assert outcome(state.events.record(again.events)) == (1, 1)
    assert outcome(state.events.record(())) == (0, 0)


# -- Catalog ---------------------------------------------------------------------------------------

def _id(name: str) -> int:
    with db.engine.connect() as connection:
        return int(connection.execute(
            select(Repository.id).where(Repository.name == name)).scalar_one())


def test_put_tag_registers_records_and_replaces(state: Services) -> None:
    state.catalog.put_tag("alice/app", "v1", V1, OCI_MANIFEST, 123, pushed_at=at(5),
                          pushed_by="alice")
    state.catalog.put_tag("alice/app", "v2", V2, OCI_MANIFEST, 77)  # seen by a sync only
    assert repository() == {"visibility": "private", "pushed_at": at(5), "pull_count": 0,
                            "last_pulled_at": None}
    assert registered("alice/app") == [("", "alice/app", "private")]
    state.catalog.put_tag("alice/app", "v1", V2, OCI_MANIFEST, 77)
    assert tags(state) == {"v1": (V2, 77), "v2": (V2, 77)}
    assert repository()["pushed_at"] == at(5)
    v2 = state.catalog.tag("alice/app", "v2")
    assert v2 is not None and (v2.pushed_at, v2.pushed_by) == (None, "")
    assert state.catalog.tag("alice/app", "v3") is None
    assert state.catalog.tags("nobody/app") == []


def test_put_tag_with_a_push_time_keeps_the_later_one(state: Services) -> None:
    state.catalog.put_tag("alice/app", "v1", V1, OCI_MANIFEST, 123, pushed_at=at(5))
    db.session.expire_all()  # as in a later request or command: read back from the database
    state.catalog.put_tag("alice/app", "v2", V2, OCI_MANIFEST, 77, pushed_at=at(1))
    state.catalog.put_tag("alice/app", "v3", V2, OCI_MANIFEST, 77, pushed_at=at(9))
    assert repository()["pushed_at"] == at(9)
    assert set(tags(state)) == {"v1", "v2", "v3"}


def test_all_tags_and_tag_counts(state: Services) -> None:
    state.catalog.put_tag("alice/app", "v1", V1, OCI_MANIFEST, 100)
    state.catalog.put_tag("alice/app", "v2", V2, OCI_MANIFEST, 50)
    state.catalog.put_tag("bob/app", "latest", V1, OCI_MANIFEST, 100)
    state.repos.create("carol/empty")
    assert {repo: set(found) for repo, found in state.catalog.all_tags().items()} == {
        "alice/app": {"v1", "v2"}, "bob/app": {"latest"}}
    ids = [_id("alice/app"), _id("bob/app"), _id("carol/empty")]
    assert state.catalog.tag_counts(ids) == {ids[0]: (2, 150), ids[1]: (1, 100)}
    assert state.catalog.tag_counts([]) == {}


def test_drop_tags_digest_and_repository(state: Services, three_tags: None) -> None:
    state.catalog.drop_tags("alice/app", ["v2", "nonesuch"])
    assert set(tags(state)) == {"v1", "stable"}
    assert sorted(state.catalog.drop_digest("alice/app", V1)) == ["stable", "v1"]
    assert tags(state) == {}
    assert tags(state, "bob/app") == {"v1": (V1, 6000)}
    assert state.catalog.drop_repository("bob/app") == ["v1"]
    assert state.catalog.drop_repository("nobody/app") == []
    assert state.catalog.all_tags() == {}
    assert repository("bob/app") != {}
    with db.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Manifest).where(
            Manifest.repository_id == _id("bob/app"))).scalar_one() == 0


def test_authsvcs_own_reads_are_no_pulls(state: Services) -> None:
    """``registry sync`` and the deletes read manifests by tag with tokens for ``authsvc:…``
    (a name no user can have): the registry reports those reads as pulls, and they do not
    count."""
    record(state, push("p", tag="v1"))
    record(state, pull("own1", tag="v1", actor="authsvc:sync"),
           pull("own2", tag="v1", actor="authsvc:api"), pull("bob", tag="v1", actor="bob"))
    assert repository()["pull_count"] == 1


def test_an_image_two_tags_share_is_counted_once_in_the_size(state: Services) -> None:
    record(state, push("a", tag="v1", digest=V1, references=layers(100, 900)),
           push("b", tag="latest", digest=V1, references=layers(100, 900)),
           push("c", tag="v2", digest=V2, references=layers(100, 4900)))
    repo_id = state.repos.get("alice/app").id
    assert state.catalog.tag_counts([repo_id]) == {repo_id: (3, 1000 + 5000)}

"""The registry's notification envelopes (authsvc.core.registry_events): the events distribution's
bridge (``notifications/bridge.go``) sends, shaped as its ``json.MarshalIndent`` writes them,
malformed envelopes and events, huge values, and property tests over generated JSON and bytes.
"""

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authsvc.core.registry_events import (
    EVENTS_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPES,
    MAX_EVENTS,
    Envelope,
    Reference,
    RegistryEvent,
    parse_envelope,
)
from authsvc.errors import MalformedBody

PROPERTIES = settings(database=None, max_examples=300, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CONFIG = "application/vnd.docker.container.image.v1+json"
REGISTRY = "registry.example.com:5000"


def sha256(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


MANIFEST, CONFIG_BLOB, LAYER_BLOB = sha256("manifest"), sha256("config"), sha256("layer")
AT = "2026-12-01T15:04:05.123456789+01:00"
AT_UTC = datetime(2026, 12, 1, 14, 4, 5, 123456, tzinfo=UTC)

#: The manifest push of ``docker push registry.example.com:5000/alice/app:latest`` exactly as
#: distribution 2.8 POSTs it (endpoint with ``includereferences``).
MANIFEST_PUSH = ("""{
   "events": [
      {
         "id": "320678d8-ca14-430f-8bb6-4ca139cd83f7",
         "timestamp": "2026-12-01T15:04:05.123456789+01:00",
         "action": "push",
         "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 708,
            "digest": "@MANIFEST@",
            "length": 708,
            "repository": "alice/app",
            "url": "https://registry.example.com:5000/v2/alice/app/manifests/@MANIFEST@",
            "tag": "latest",
            "references": [
               {
                  "mediaType": "application/vnd.docker.container.image.v1+json",
                  "size": 1457,
                  "digest": "@CONFIG@"
               },
               {
                  "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                  "size": 3370628,
                  "digest": "@LAYER@"
               }
            ]
         },
         "request": {
            "id": "7d5a4e0f-2d4b-4a5f-a4a4-4a2fbd0d2a43",
            "addr": "172.17.0.1:54302",
            "host": "registry.example.com:5000",
            "method": "PUT",
            "useragent": "docker/27.3.1 go/go1.22.7 git-commit/41ca978 kernel/6.8.0 os/linux"
         },
         "actor": {
            "name": "alice"
         },
         "source": {
            "addr": "a1b2c3d4e5f6:5000",
            "instanceID": "b6b3e0a4-55a1-4bd2-9d84-1bbd6fe0c2f1"
         }
      }
   ]
}""".replace("@MANIFEST@", MANIFEST).replace("@CONFIG@", CONFIG_BLOB)
                 .replace("@LAYER@", LAYER_BLOB).encode())


def go_event(action: str, target: dict[str, Any], *, method: str = "GET",
             actor: str = "alice", event_id: str = "e1", timestamp: str = AT) -> dict[str, Any]:
    """An event in the field order of distribution's Event struct; Go leaves out empty
    ``omitempty`` fields but always writes the request's id, method and useragent."""
    return {
        "id": event_id, "timestamp": timestamp, "action": action, "target": target,
        "request": {"id": "req-1", "addr": "172.17.0.1:54302", "host": REGISTRY,
                    "method": method, "useragent": "skopeo/1.16.1"},
        "actor": {"name": actor} if actor else {},
        "source": {"addr": "a1b2c3d4e5f6:5000", "instanceID": "b6b3e0a4"},
    }


def envelope(*events: Any) -> bytes:
    """What the registry's httpSink POSTs: ``json.MarshalIndent(envelope, "", "   ")``."""
    return json.dumps({"events": list(events)}, indent=3).encode()


def manifest_target(repository: str = "alice/app", digest: str = MANIFEST, tag: str = "",
                    media_type: str = DOCKER_MANIFEST, size: int = 708) -> dict[str, Any]:
    target: dict[str, Any] = {"mediaType": media_type, "size": size, "digest": digest,
                              "length": size, "repository": repository,
                              "url": f"https://{REGISTRY}/v2/{repository}/manifests/{digest}"}
    if tag:
        target["tag"] = tag
    return target


def blob_target(media_type: str = "application/octet-stream", digest: str = LAYER_BLOB,
                repository: str = "alice/app") -> dict[str, Any]:
    return {"mediaType": media_type, "size": 3370628, "digest": digest, "length": 3370628,
            "repository": repository,
            "url": f"https://{REGISTRY}/v2/{repository}/blobs/{digest}"}


def recorded(action: str, *, tag: str = "", digest: str = MANIFEST,
             media_type: str = DOCKER_MANIFEST, size: int = 708, actor: str = "alice",
             method: str = "GET", repository: str = "alice/app",
             references: tuple[Reference, ...] = ()) -> RegistryEvent:
    return RegistryEvent("e1", action, repository, tag, digest, media_type, size, references,
                         AT_UTC, actor, method)


def only(body: bytes) -> RegistryEvent:
    """The one event ``body`` records (nothing ignored, nothing rejected)."""
    result = parse_envelope(body)
    assert (result.ignored, result.rejected, len(result.events)) == (0, (), 1)
    return result.events[0]


def test_the_constants_name_the_registry_formats() -> None:
    assert EVENTS_MEDIA_TYPE == "application/vnd.docker.distribution.events.v2+json"
    assert MANIFEST_MEDIA_TYPES == {
        DOCKER_MANIFEST, "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.oci.image.manifest.v1+json", OCI_INDEX}
    assert MAX_EVENTS == 1000


def test_a_manifest_push_with_tag_and_references() -> None:
    event = only(MANIFEST_PUSH)
    assert event == RegistryEvent(
        "320678d8-ca14-430f-8bb6-4ca139cd83f7", "push", "alice/app", "latest", MANIFEST,
        DOCKER_MANIFEST, 708, (Reference(CONFIG, CONFIG_BLOB, 1457),
                               Reference(LAYER, LAYER_BLOB, 3370628)), AT_UTC, "alice", "PUT")
    assert event.image_size == 1457 + 3370628
    assert event.at.tzinfo is UTC


RECORDED = [
    ("pull by tag", go_event("pull", manifest_target(tag="v1")), recorded("pull", tag="v1")),
    ("HEAD pull by tag", go_event("pull", manifest_target(tag="v1"), method="HEAD"),
     recorded("pull", tag="v1", method="HEAD")),
    ("pull by digest", go_event("pull", manifest_target()), recorded("pull")),
    ("anonymous pull", go_event("pull", manifest_target(), actor=""),
     recorded("pull", actor="")),
    ("non-ASCII actor", go_event("pull", manifest_target(), actor="jürgen@example.com"),
     recorded("pull", actor="jürgen@example.com")),
    ("OCI index push", go_event("push", manifest_target(media_type=OCI_INDEX, tag="multi"),
                                method="PUT"),
     recorded("push", tag="multi", media_type=OCI_INDEX, method="PUT")),
    ("artifact manifest: the url decides",
     go_event("push", manifest_target(media_type="application/vnd.example.thing+json"),
              method="PUT"),
     recorded("push", media_type="application/vnd.example.thing+json", method="PUT")),
    ("manifest media type, no url",
     go_event("pull", {k: v for k, v in manifest_target().items() if k != "url"}),
     recorded("pull")),
    ("repository named like the url's kind",
     go_event("pull", manifest_target(repository="alice/blobs")),
     recorded("pull", repository="alice/blobs")),
    ("2.8 manifest delete by digest",
     go_event("delete", {"digest": MANIFEST, "repository": "alice/app"}, method="DELETE"),
     recorded("delete", media_type="", size=0, method="DELETE")),
    ("2.8 blob delete: the same shape, a digest no tag has",
     go_event("delete", {"digest": LAYER_BLOB, "repository": "alice/app"}, method="DELETE"),
     recorded("delete", digest=LAYER_BLOB, media_type="", size=0, method="DELETE")),
    ("3.x tag delete", go_event("delete", {"repository": "alice/app", "tag": "v1"},
                                method="DELETE"),
     recorded("delete", tag="v1", digest="", media_type="", size=0, method="DELETE")),
    ("3.x repository delete", go_event("delete", {"repository": "alice/app"}, method="DELETE"),
     recorded("delete", digest="", media_type="", size=0, method="DELETE")),
    ("nulls count as absent", go_event("delete", {"repository": "alice/app", "tag": None,
                                                  "digest": None, "references": None}) |
     {"actor": None, "request": None},
     recorded("delete", digest="", media_type="", size=0, actor="", method="")),
    ("unknown fields are fine",
     go_event("pull", manifest_target() | {"annotations": {"a": "b"}, "platform": {}}) |
     {"future": [1, {"x": None}]}, recorded("pull")),
]


@pytest.mark.parametrize(("event", "expected"), [c[1:] for c in RECORDED],
                         ids=[c[0] for c in RECORDED])
def test_manifest_and_tag_events_are_recorded(event: dict[str, Any],
                                              expected: RegistryEvent) -> None:
    assert only(envelope(event)) == expected


def test_image_size_is_the_manifest_size_without_references() -> None:
    assert recorded("pull").image_size == 708


IGNORED = [
    ("blob push", go_event("push", blob_target(), method="PUT")),
    ("blob pull of a layer", go_event("pull", blob_target(LAYER))),
    ("blob HEAD", go_event("pull", blob_target(), method="HEAD")),
    ("manifest bytes pulled as a blob: the url decides",
     go_event("pull", blob_target(DOCKER_MANIFEST, MANIFEST))),
    ("blob of a repository named x/manifests",
     go_event("pull", blob_target(repository="alice/manifests"))),
    ("blob event without url", go_event("pull", {"mediaType": LAYER, "size": 3,
                                                 "digest": LAYER_BLOB,
                                                 "repository": "alice/app"})),
    ("mount", go_event("mount", blob_target() | {"fromRepository": "bob/base"},
                       method="POST")),
    ("mount of a manifest media type", go_event("mount", manifest_target(), method="POST")),
]


@pytest.mark.parametrize("event", [c[1] for c in IGNORED], ids=[c[0] for c in IGNORED])
def test_blob_events_and_mounts_are_ignored(event: dict[str, Any]) -> None:
    assert parse_envelope(envelope(event)) == Envelope((), 1, ())


TIMESTAMPS = [
    ("2026-12-01T15:04:05Z", datetime(2026, 12, 1, 15, 4, 5, tzinfo=UTC)),
    ("2026-12-01T15:04:05.1Z", datetime(2026, 12, 1, 15, 4, 5, 100000, tzinfo=UTC)),
    ("2026-12-01T15:04:05.123456Z", datetime(2026, 12, 1, 15, 4, 5, 123456, tzinfo=UTC)),
    ("2026-12-01T15:04:05.999999999Z", datetime(2026, 12, 1, 15, 4, 5, 999999, tzinfo=UTC)),
    ("2026-12-01T15:04:05.123456789+01:00", AT_UTC),
    ("2026-12-31T23:30:00.5-05:30", datetime(2027, 1, 1, 5, 0, 0, 500000, tzinfo=UTC)),
    ("2026-12-01t15:04:05z", datetime(2026, 12, 1, 15, 4, 5, tzinfo=UTC)),
    ("2028-02-29T00:00:00-00:00", datetime(2028, 2, 29, tzinfo=UTC)),
    ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),  # Go's zero time
]


@pytest.mark.parametrize(("text", "expected"), TIMESTAMPS)
def test_timestamps_are_read_to_the_microsecond_in_utc(text: str, expected: datetime) -> None:
    at = only(envelope(go_event("pull", manifest_target(), timestamp=text))).at
    assert (at, at.utcoffset()) == (expected, timedelta(0))


BAD_TIMESTAMPS = ["", "2026-12-01", "2026-12-01T15:04:05", "2026-12-01 15:04:05Z",
                  "2026-12-01T15:04:05.Z", "2026-12-01T15:04:05.1234567891Z",
                  "2026-13-01T15:04:05Z", "2026-02-30T15:04:05Z", "2026-12-01T24:00:00Z",
                  "2026-12-01T15:04:60Z", "2026-12-01T15:04:05+24:00",
                  "2026-12-01T15:04:05+01:60", "2026-12-01T15:04:05+0100",
                  "0000-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00",
                  "9999-12-31T23:59:59-01:00", "2026-12-01T15:04:05Z\n",
                  "２０２６-12-01T15:04:05Z", "1765000000"]


@pytest.mark.parametrize("text", BAD_TIMESTAMPS)
def test_a_bad_timestamp_rejects_the_event(text: str) -> None:
    result = parse_envelope(envelope(go_event("pull", manifest_target(), timestamp=text)))
    assert result.events == () and len(result.rejected) == 1
    assert "timestamp" in result.rejected[0]


def without(event: dict[str, Any], *path: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(event))
    inner = copy
    for key in path[:-1]:
        inner = inner[key]
    del inner[path[-1]]
    return copy


def with_(event: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(event))
    inner = copy
    for key in path[:-1]:
        inner = inner[key]
    inner[path[-1]] = value
    return copy


GOOD = go_event("pull", manifest_target(tag="v1"))
BAD_EVENTS: list[tuple[str, Any, str]] = [
    ("a string", "push", "event 1: is a string, not an object"),
    ("an array", [GOOD], "event 1: is an array, not an object"),
    ("null", None, "event 1: is null, not an object"),
    ("no id", without(GOOD, "id"), "event 1: id is missing"),
    ("empty id", with_(GOOD, "", "id"), "event 1: id is missing"),
    ("numeric id", with_(GOOD, 7, "id"), "event 1: id is a number, not a string"),
    ("id with a newline", with_(GOOD, "a\nb", "id"), "event 1: id 'a\\nb' is invalid"),
    ("id too long", with_(GOOD, "x" * 129, "id"), "event 1: id 'xxxxx"),
    ("unknown action", with_(GOOD, "frob", "action"),
     "event 1 (id 'e1'): action 'frob' is unknown"),
    ("upper-case action", with_(GOOD, "PUSH", "action"), "action 'PUSH' is unknown"),
    ("no action", without(GOOD, "action"), "action is missing"),
    ("action not a string", with_(GOOD, ["push"], "action"), "action is an array"),
    ("no timestamp", without(GOOD, "timestamp"), "timestamp is missing"),
    ("numeric timestamp", with_(GOOD, 1765000000, "timestamp"), "timestamp is a number"),
    ("target not an object", with_(GOOD, "alice/app", "target"), "target is a string"),
    ("no repository", without(GOOD, "target", "repository"), "target.repository is missing"),
    ("upper-case repository", with_(GOOD, "Alice/app", "target", "repository"),
     "target.repository 'Alice/app' is no valid repository name"),
    ("repository behind a host", with_(GOOD, f"{REGISTRY}/alice/app", "target", "repository"),
     "is no valid repository name"),
    ("bad tag", with_(GOOD, "-v1", "target", "tag"), "target.tag '-v1' is no valid tag"),
    ("tag of 129 characters", with_(GOOD, "v" * 129, "target", "tag"), "is no valid tag"),
    ("tag not a string", with_(GOOD, 1, "target", "tag"), "target.tag is a number"),
    ("short digest", with_(GOOD, "sha256:abc", "target", "digest"), "is no valid digest"),
    ("upper-case hex", with_(GOOD, MANIFEST.upper(), "target", "digest"),
     "is no valid digest"),
    ("digest without algorithm", with_(GOOD, MANIFEST[7:], "target", "digest"),
     "is no valid digest"),
    ("manifest without digest", without(GOOD, "target", "digest"),
     "the manifest pull has no target.digest"),
    ("negative size", with_(GOOD, -1, "target", "size"), "target.size '-1' is out of range"),
    ("size beyond int64", with_(GOOD, 2**63, "target", "size"), "is out of range"),
    ("float size", with_(GOOD, 708.0, "target", "size"), "target.size is a number, not an"),
    ("boolean size", with_(GOOD, True, "target", "size"),
     "target.size is a boolean, not an integer"),
    ("string length", with_(GOOD, "708", "target", "length"),
     "target.length is a string, not an integer"),
    ("bad media type", with_(GOOD, "manifest", "target", "mediaType"), "is no media type"),
    ("url not a string", with_(GOOD, {}, "target", "url"), "target.url is an object"),
    ("references not an array", with_(GOOD, {}, "target", "references"),
     "target.references is an object, not an array"),
    ("reference not an object", with_(GOOD, [MANIFEST], "target", "references"),
     "target.references[0] is a string, not an object"),
    ("reference without digest", with_(GOOD, [{"size": 1}], "target", "references"),
     "target.references[0].digest is missing"),
    ("reference with negative size",
     with_(GOOD, [{"digest": LAYER_BLOB, "size": -5}], "target", "references"),
     "target.references[0].size '-5' is out of range"),
    ("actor not an object", with_(GOOD, "alice", "actor"), "actor is a string"),
    ("actor name not a string", with_(GOOD, {"name": 1}, "actor"), "actor.name is a number"),
    ("actor name with NUL", with_(GOOD, {"name": "a\x00"}, "actor"), "is no valid text"),
    ("actor name with lone surrogate", with_(GOOD, {"name": "a\udcff"}, "actor"),
     "is no valid text"),
    ("request not an object", with_(GOOD, [], "request"), "request is an array"),
    ("bad method", with_(GOOD, "GET /", "request", "method"), "is no HTTP method"),
    ("blob event with a bad repository", go_event("push", blob_target(repository="A")),
     "is no valid repository name"),
    ("delete without repository", go_event("delete", {"digest": MANIFEST}),
     "target.repository is missing"),
]


@pytest.mark.parametrize(("bad", "reason"), [c[1:] for c in BAD_EVENTS],
                         ids=[c[0] for c in BAD_EVENTS])
def test_one_bad_event_never_loses_the_good_ones(bad: Any, reason: str) -> None:
    first = with_(GOOD, "first", "id")
    last = with_(GOOD, "last", "id")
    result = parse_envelope(envelope(first, bad, last))
    assert [e.id for e in result.events] == ["first", "last"]
    assert result.ignored == 0
    assert len(result.rejected) == 1 and reason in result.rejected[0], result.rejected
    assert result.rejected[0].startswith("event 1")


def test_the_reason_names_the_event_and_its_id() -> None:
    result = parse_envelope(envelope(GOOD, GOOD, GOOD, with_(GOOD, "frob", "action")))
    assert result.rejected == ("event 3 (id 'e1'): action 'frob' is unknown",)


def test_duplicated_ids_are_all_returned() -> None:
    """Recording once per id is the database's job, not the parser's."""
    result = parse_envelope(envelope(GOOD, GOOD))
    assert result.events == (result.events[0],) * 2 and result.events[0].id == "e1"


def test_many_events_keep_their_order_and_are_counted() -> None:
    events = [with_(GOOD, f"id-{i}", "id") for i in range(5)]
    events.insert(2, go_event("push", blob_target()))
    events.insert(4, go_event("mount", blob_target()))
    result = parse_envelope(envelope(*events))
    assert [e.id for e in result.events] == [f"id-{i}" for i in range(5)]
    assert (result.ignored, result.rejected) == (2, ())


def test_an_empty_events_list_is_an_empty_envelope() -> None:
    assert parse_envelope(b'{"events": []}') == Envelope((), 0, ())


def test_max_events_events_are_read() -> None:
    result = parse_envelope(envelope(*[GOOD] * MAX_EVENTS))
    assert len(result.events) == MAX_EVENTS


MALFORMED = [
    ("empty", b""),
    ("not JSON", b"events: []"),
    ("truncated", MANIFEST_PUSH[:-3]),
    ("invalid UTF-8", b'{"events": [], "x": "\xff"}'),
    ("UTF-16", '{"events": []}'.encode("utf-16")),
    ("UTF-8 BOM", b'\xef\xbb\xbf{"events": []}'),
    ("NaN", b'{"events": [], "x": NaN}'),
    ("a list", b"[]"),
    ("a list of events", json.dumps([GOOD]).encode()),
    ("a string", b'"events"'),
    ("null", b"null"),
    ("no events", b'{"event": []}'),
    ("events not a list", b'{"events": {"0": {}}}'),
    ("events null", b'{"events": null}'),
    ("1001 events", envelope(*[GOOD] * (MAX_EVENTS + 1))),
    ("deep arrays", b"[" * 100_000),
    ("deep objects in an event", b'{"events": [' + b'{"a": ' * 100_000 + b"1" +
     b"}" * 100_000 + b"]}"),
    ("an integer of 5000 digits", b'{"events": [], "n": ' + b"9" * 5000 + b"}"),
]


@pytest.mark.parametrize("body", [c[1] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_envelopes_raise_malformed_body(body: bytes) -> None:
    with pytest.raises(MalformedBody) as info:
        parse_envelope(body)
    assert info.value.status == 400 and len(info.value.message) < 100


HUGE = 10_000_000


@pytest.mark.parametrize(("path", "value"), [
    (("target", "tag"), "a" * HUGE),
    (("target", "repository"), "a" * HUGE),
    (("target", "digest"), "sha256:" + "a" * HUGE),
    (("target", "mediaType"), "application/" + "a" * HUGE),
    (("target", "size"), int("9" * 4000)),
    (("id",), "a" * HUGE),
    (("timestamp",), "2" * HUGE),
    (("request", "method"), "G" * HUGE),
])
def test_huge_values_are_rejected_quickly_with_a_short_reason(path: tuple[str, ...],
                                                              value: Any) -> None:
    body = envelope(GOOD, with_(GOOD, value, *path))
    started = time.perf_counter()
    result = parse_envelope(body)
    assert time.perf_counter() - started < 2
    assert len(result.events) == 1 and len(result.rejected) == 1
    assert len(result.rejected[0]) < 200, result.rejected[0][:300]


def test_a_huge_actor_name_is_cut_to_255_characters() -> None:
    event = only(envelope(with_(GOOD, {"name": "a" * HUGE}, "actor")))
    assert event.actor == "a" * 255


# --- properties -----------------------------------------------------------------------------

def json_of(floats: st.SearchStrategy[float]) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none() | st.booleans() | st.integers() | floats | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner,
                                                                    max_size=4),
        max_leaves=30)


#: Any JSON, and Python's ``Infinity`` (which is no JSON) now and then.
any_json = json_of(st.floats(allow_nan=False))
json_values = json_of(st.floats(allow_nan=False, allow_infinity=False))
#: Values that land on the fields the parser reads, good and bad.
field_values = st.one_of(
    json_values,
    st.sampled_from(["push", "pull", "mount", "delete", "alice/app", "v1", MANIFEST, AT,
                     DOCKER_MANIFEST, f"https://{REGISTRY}/v2/a/manifests/x", "/blobs/",
                     "GET", 708, -1, 2**63, True]))
targets = st.dictionaries(st.sampled_from(["mediaType", "size", "digest", "length",
                                           "repository", "url", "tag", "references"]),
                          field_values | st.lists(json_values | st.fixed_dictionaries(
                              {"digest": field_values, "size": field_values}), max_size=3))
event_like = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={"id": field_values, "action": field_values,
                                        "timestamp": field_values, "target": targets,
                                        "request": st.dictionaries(st.just("method"),
                                                                   field_values),
                                        "actor": st.dictionaries(st.just("name"),
                                                                 field_values)}),
)


def parses_or_refuses(body: bytes) -> None:
    try:
        result = parse_envelope(body)
    except MalformedBody:
        return
    assert isinstance(result, Envelope)
    assert all(len(reason) < 400 for reason in result.rejected)


@PROPERTIES
@given(document=any_json)
def test_any_json_parses_or_is_refused(document: Any) -> None:
    parses_or_refuses(json.dumps(document).encode())


@PROPERTIES
@given(events=st.lists(event_like, max_size=5))
def test_any_event_shaped_json_parses_or_is_refused(events: list[Any]) -> None:
    result = parse_envelope(json.dumps({"events": events}).encode())
    assert len(result.events) + result.ignored + len(result.rejected) == len(events)
    assert all(len(reason) < 400 for reason in result.rejected)


@PROPERTIES
@given(body=st.binary(max_size=200) | st.builds(
    lambda head, tail: head + tail, st.just(b'{"events": ['), st.binary(max_size=200)))
def test_any_bytes_parse_or_are_refused(body: bytes) -> None:
    parses_or_refuses(body)


def go_timestamp(at: datetime, nanos: int) -> str:
    """``at`` (whole microseconds) plus ``nanos`` as Go's RFC3339Nano writes it: trailing
    zeros of the fraction dropped, ``Z`` for UTC, else ``±hh:mm``."""
    fraction = f"{at.microsecond:06d}{nanos:03d}".rstrip("0")
    offset = at.utcoffset() or timedelta(0)
    if offset:
        minutes = int(offset.total_seconds()) // 60
        sign, minutes = ("-", -minutes) if minutes < 0 else ("+", minutes)
        zone = f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    else:
        zone = "Z"
    return at.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + zone


components = st.from_regex(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", fullmatch=True)
repositories = st.lists(components, min_size=1, max_size=3).map("/".join).filter(
    lambda name: len(name) <= 255)
zones = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1),
                       timezones=st.just(UTC) | zones)
digests = st.one_of(st.binary().map(lambda b: "sha256:" + hashlib.sha256(b).hexdigest()),
                    st.binary().map(lambda b: "sha512:" + hashlib.sha512(b).hexdigest()))


@st.composite
def valid_events(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A valid recorded event as the registry sends it, and what must come back of it."""
    action = draw(st.sampled_from(["push", "pull", "delete"]))
    repository = draw(repositories)
    tag = draw(st.just("") | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
                                           fullmatch=True))
    digest = draw(digests) if action != "delete" else draw(st.just("") | digests)
    size = draw(st.integers(0, 2**63 - 1)) if action != "delete" else 0
    at, nanos = draw(moments), draw(st.integers(0, 999))
    target: dict[str, Any] = {"repository": repository, "tag": tag, "digest": digest}
    if action != "delete":
        target |= {"mediaType": draw(st.sampled_from(sorted(MANIFEST_MEDIA_TYPES))),
                   "size": size, "length": size}
    event = go_event(action, target, event_id=draw(st.from_regex(r"[\x20-\x7e]{1,128}",
                                                                  fullmatch=True)),
                     timestamp=go_timestamp(at, nanos))
    expected = {"id": event["id"], "action": action, "repository": repository, "tag": tag,
                "digest": digest, "size": size, "at": at.astimezone(UTC)}
    return event, expected


@PROPERTIES
@given(pairs=st.lists(valid_events(), min_size=1, max_size=4))
def test_valid_events_come_back_as_they_went_in(
        pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    result = parse_envelope(envelope(*(event for event, _ in pairs)))
    assert (result.ignored, result.rejected) == (0, ())
    got = [{"id": e.id, "action": e.action, "repository": e.repository, "tag": e.tag,
            "digest": e.digest, "size": e.size, "at": e.at} for e in result.events]
    assert got == [expected for _, expected in pairs]
    assert all(e.at.utcoffset() == timedelta(0) for e in result.events)

"""The registry's notification envelopes (``application/vnd.docker.distribution.events.v2+json``),
read into the manifest and tag events authsvc records. Pure.

distribution's notification bridge (``notifications/bridge.go``) POSTs ``{"events": [...]}``,
one event per envelope in practice. Each event carries ``id``, ``timestamp``, ``action``,
``target`` (a descriptor plus ``length``, ``repository``, ``fromRepository``, ``url``, ``tag``
and ``references``), ``request``, ``actor`` and ``source``; Go leaves out empty fields.

Recorded: push and pull of a manifest (a manifest media type, or a ``…/manifests/<ref>`` url)
and every delete (2.8: repository + digest, of a manifest or a blob alike; 3.x: repository +
tag, or the repository alone). Blob push and pull and every mount are ignored. One malformed
event is rejected with a reason and never costs the others; only an envelope that cannot be
read at all raises.
"""

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from authsvc.core.scopes import is_valid_path
from authsvc.errors import MalformedBody

EVENTS_MEDIA_TYPE = "application/vnd.docker.distribution.events.v2+json"
MANIFEST_MEDIA_TYPES = frozenset({
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
})
#: More events than this in one envelope make the envelope malformed.
MAX_EVENTS = 1000

_ACTIONS = frozenset({"push", "pull", "mount", "delete"})
_MAX_ACTOR = 255
_MAX_DIGEST = 255
_MAX_SIZE = 2**63 - 1  # Go's int64
_CLIP = 50
_ID_RE = re.compile(r"[\x20-\x7e]{1,128}")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST_RE = re.compile(r"(?P<alg>[a-z0-9]+(?:[.+_-][a-z0-9]+)*):(?P<enc>[a-zA-Z0-9=_-]+)")
#: The algorithms go-digest registers, with the length of their lower-case hex encoding.
_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX_RE = re.compile(r"[a-f0-9]+")
_MEDIA_TYPE_RE = re.compile(r"[A-Za-z0-9][\w!#$&^.+-]{0,126}/[A-Za-z0-9][\w!#$&^.+-]{0,126}",
                            re.ASCII)
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_METHOD_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")
_TIMESTAMP_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                           r"(?:\.([0-9]{1,9}))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))")
_JSON_KINDS = {dict: "an object", list: "an array", str: "a string", int: "a number",
               float: "a number", bool: "a boolean"}


@dataclass(frozen=True)
class Reference:
    """One descriptor a manifest refers to: its config and layers, or an index's manifests."""

    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class RegistryEvent:
    """One manifest or tag event to record. ``tag``, ``digest``, ``media_type``, ``actor`` and
    ``method`` are "" when the event has none; ``size`` is 0 when unknown; ``at`` is UTC."""

    id: str
    action: str
    repository: str
    tag: str
    digest: str
    media_type: str
    size: int
    references: tuple[Reference, ...]
    at: datetime
    actor: str
    method: str

    @property
    def image_size(self) -> int:
        """The sum of the references' sizes (an image manifest's config and layers) when there
        are references, else the manifest's own ``size``."""
        return sum(r.size for r in self.references) if self.references else self.size


@dataclass(frozen=True)
class Envelope:
    """The events to record (in order), how many well-formed events were of no interest
    (blobs, mounts), and one loggable reason per malformed event."""

    events: tuple[RegistryEvent, ...]
    ignored: int
    rejected: tuple[str, ...]


class _Rejected(Exception):
    """One event is malformed; the message says why and is safe to log."""


def parse_envelope(body: bytes) -> Envelope:
    """Read a notification envelope into the events to record.

    Returns an Envelope. Raises MalformedBody when the body is not UTF-8 JSON, not an object,
    has no ``events`` list, has more than MAX_EVENTS events or is nested too deeply. Anything
    wrong inside one event only adds a reason (``event <index from 0> (id '…'): …``) to
    ``rejected``.
    """
    recorded: list[RegistryEvent] = []
    rejected: list[str] = []
    ignored = 0
    for index, raw in enumerate(_events_of(body)):
        try:
            event = _parse_event(raw)
        except _Rejected as e:
            rejected.append(f"{_label(index, raw)}: {e}")
            continue
        if event is None:
            ignored += 1
        else:
            recorded.append(event)
    return Envelope(tuple(recorded), ignored, tuple(rejected))


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is no JSON")


def _events_of(body: bytes) -> list[Any]:
    """The envelope's ``events`` list. Raises MalformedBody (see parse_envelope)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("the notification body is not UTF-8") from None
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except ValueError:
        raise MalformedBody("the notification body is not JSON") from None
    except RecursionError:  # json gives up on deep nesting (``[[[…``) with this
        raise MalformedBody("the notification body is nested too deeply") from None
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, list):
        raise MalformedBody("the notification body is no envelope: expected {\"events\": [...]}")
    if len(events) > MAX_EVENTS:
        raise MalformedBody(f"too many events in one envelope: at most {MAX_EVENTS}")
    return events


def _label(index: int, raw: object) -> str:
    """``event 3 (id 'abc')``, or ``event 3`` when the event has no valid id."""
    event_id = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(event_id, str) and _valid_id(event_id):
        return f"event {index} (id {_clip(event_id)})"
    return f"event {index}"


def _parse_event(raw: object) -> RegistryEvent | None:
    """The event to record, or None when it is well-formed but not about manifests or tags.
    Raises _Rejected when it is malformed."""
    if not isinstance(raw, dict):
        raise _Rejected(f"is {_kind(raw)}, not an object")
    event_id = _string(raw, "id")
    if not event_id:
        raise _Rejected("id is missing")
    if not _valid_id(event_id):
        raise _Rejected(f"id {_clip(event_id)} is invalid: 1-128 printable ASCII characters")
    action = _string(raw, "action")
    if action not in _ACTIONS:
        raise _Rejected(f"action {_clip(action)} is unknown" if action else "action is missing")
    at = _timestamp(raw.get("timestamp"))
    target = _object(raw, "target")
    repository, tag, digest = _names(target)
    media_type = _media_type(_string(target, "mediaType", "target."), "target.")
    size = _size(target, "target.")
    references = tuple(_reference(i, r) for i, r in enumerate(_array(target, "references")))
    url = _string(target, "url", "target.")
    actor, method = _actor(raw), _method(raw)
    if action == "mount":
        return None
    if action != "delete":
        if not _is_manifest(media_type, url):
            return None
        if not digest:
            raise _Rejected(f"the manifest {action} has no target.digest")
    return RegistryEvent(event_id, action, repository, tag, digest, media_type, size,
                         references, at, actor, method)


def _names(target: dict[str, Any]) -> tuple[str, str, str]:
    """The target's repository (required), tag and digest ("" when absent). Raises
    _Rejected when one is invalid."""
    repository = _string(target, "repository", "target.")
    if not repository:
        raise _Rejected("target.repository is missing")
    if not is_valid_path(repository):
        raise _Rejected(f"target.repository {_clip(repository)} is no valid repository name")
    tag = _string(target, "tag", "target.")
    if tag and (len(tag) > 128 or _TAG_RE.fullmatch(tag) is None):
        raise _Rejected(f"target.tag {_clip(tag)} is no valid tag")
    return repository, tag, _digest(_string(target, "digest", "target."), "target.")


def _reference(index: int, raw: object) -> Reference:
    """One of ``target.references``. Raises _Rejected when malformed or without digest."""
    where = f"target.references[{index}]."
    if not isinstance(raw, dict):
        raise _Rejected(f"{where[:-1]} is {_kind(raw)}, not an object")
    digest = _digest(_string(raw, "digest", where), where)
    if not digest:
        raise _Rejected(f"{where}digest is missing")
    return Reference(_media_type(_string(raw, "mediaType", where), where), digest,
                     _size(raw, where))


def _is_manifest(media_type: str, url: str) -> bool:
    """Whether a push or pull is about a manifest: the url's ``…/manifests/<ref>`` or
    ``…/blobs/<digest>`` decides (a repository may be named ``x/manifests``), else the
    media type."""
    path = url.split("?", 1)[0].split("#", 1)[0]
    parts = path.rsplit("/", 2)
    if len(parts) == 3 and parts[1] in ("manifests", "blobs"):
        return parts[1] == "manifests"
    return media_type in MANIFEST_MEDIA_TYPES


def _timestamp(value: object) -> datetime:
    """An RFC 3339 timestamp (0-9 fractional digits, ``Z`` or ``±hh:mm``) as an aware UTC
    datetime, nanoseconds cut to microseconds. Raises _Rejected when missing or invalid."""
    if value is None:
        raise _Rejected("timestamp is missing")
    if not isinstance(value, str):
        raise _Rejected(f"timestamp is {_kind(value)}, not a string")
    match = _TIMESTAMP_RE.fullmatch(value) if len(value) <= 40 else None
    if match is None:
        raise _Rejected(f"timestamp {_clip(value)} is not RFC 3339")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    try:
        zone = UTC
        if sign:
            if int(off_h) > 23 or int(off_m) > 59:
                raise ValueError("offset out of range")
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            zone = timezone(-offset if sign == "-" else offset)
        micro = int((fraction or "").ljust(6, "0")[:6])
        local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                         micro, tzinfo=zone)
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _Rejected(f"timestamp {_clip(value)} is out of range") from None


def _actor(raw: dict[str, Any]) -> str:
    """``actor.name`` ("" when anonymous), at most 255 characters of it. Raises _Rejected
    when it is no string or holds NUL or a lone surrogate (no database can store those)."""
    name = _string(_object(raw, "actor"), "name", "actor.")[:_MAX_ACTOR]
    if "\x00" in name or _SURROGATE_RE.search(name):
        raise _Rejected(f"actor.name {_clip(name)} is no valid text")
    return name


def _method(raw: dict[str, Any]) -> str:
    """``request.method`` ("" when absent). Raises _Rejected when it is no HTTP method."""
    method = _string(_object(raw, "request"), "method", "request.")
    if method and (len(method) > 32 or _METHOD_RE.fullmatch(method) is None):
        raise _Rejected(f"request.method {_clip(method)} is no HTTP method")
    return method


def _digest(value: str, where: str) -> str:
    """``value`` ("" or a valid digest). Raises _Rejected when it is no valid digest."""
    if not value:
        return ""
    match = _DIGEST_RE.fullmatch(value) if len(value) <= _MAX_DIGEST else None
    hex_length = _HEX_LENGTHS.get(match.group("alg")) if match else None
    if match is None or hex_length is not None and (
            len(match.group("enc")) != hex_length
            or _HEX_RE.fullmatch(match.group("enc")) is None):
        raise _Rejected(f"{where}digest {_clip(value)} is no valid digest")
    return value


def _media_type(value: str, where: str) -> str:
    """``value`` ("" or a ``type/subtype``). Raises _Rejected when it is no media type."""
    if value and (len(value) > 255 or _MEDIA_TYPE_RE.fullmatch(value) is None):
        raise _Rejected(f"{where}mediaType {_clip(value)} is no media type")
    return value


def _size(obj: dict[str, Any], where: str) -> int:
    """``size`` (else its copy ``length``, else 0). Raises _Rejected when either is no
    integer in 0..2**63-1 (true and false are no sizes)."""
    sizes = []
    for name in ("size", "length"):
        value = obj.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Rejected(f"{where}{name} is {_kind(value)}, not an integer")
        if not 0 <= value <= _MAX_SIZE:
            raise _Rejected(f"{where}{name} {_clip(str(value))} is out of range")
        sizes.append(value)
    return sizes[0] if sizes else 0


def _string(obj: dict[str, Any], name: str, where: str = "") -> str:
    """``obj[name]``, "" when absent or null. Raises _Rejected when it is no string."""
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Rejected(f"{where}{name} is {_kind(value)}, not a string")
    return value


def _object(obj: dict[str, Any], name: str) -> dict[str, Any]:
    """``obj[name]``, {} when absent or null. Raises _Rejected when it is no object."""
    value = obj.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Rejected(f"{name} is {_kind(value)}, not an object")
    return value


def _array(obj: dict[str, Any], name: str) -> list[Any]:
    """``target[name]``, [] when absent or null. Raises _Rejected when it is no array."""
    value = obj.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Rejected(f"target.{name} is {_kind(value)}, not an array")
    return value


def _valid_id(event_id: str) -> bool:
    return len(event_id) <= 128 and _ID_RE.fullmatch(event_id) is not None


def _kind(value: object) -> str:
    """The JSON kind of ``value`` ("an array", "null"…): never the value itself."""
    return "null" if value is None else _JSON_KINDS.get(type(value), "unknown")


def _clip(text: str) -> str:
    """``text`` fit for a log line: its first 50 characters, quoted."""
    return repr(text[:_CLIP]) + ("..." if len(text) > _CLIP else "")

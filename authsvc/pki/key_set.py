"""Rotating the token-signing key without a moment in which the registry refuses tokens. Pure.

The registry reads ``rootcertbundle.pem`` (and ``jwks.json``) only when it starts, so a new key
must be trusted before anything signs with it, and the old one must stay trusted until the
tokens it signed have expired (PROTOCOL §1.6, §6 item 12). Three steps:

1. ``rotate``: write the *next* key pair and publish its certificate beside the active one.
   The registry must be restarted now.
2. ``activate``: the next key becomes the active one; the old certificate stays published as the
   *previous* one until ``trusted_until``. The published set does not change, so the registry
   needs no restart; authsvc signs with the new key once restarted.
3. ``prune`` (or the next ``rotate``): once the grace is over, stop publishing the previous one.

The certificate folder therefore holds the active pair and at most one other certificate:
the next one (between 1 and 2) or the previous one (after 2).
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509

from authsvc.errors import CertificateError, Conflict
from authsvc.pki.certs import (
    CertPaths,
    KeyType,
    cert_pem,
    check_private_key_file,
    generate_key,
    load_certificate,
    make_signing_cert,
    signing_public_key,
    write_private_key,
    write_public_file,
    write_trust_files,
)
from authsvc.pki.signing_keys import (
    KidFormat,
    algorithm_for,
    jwks_document,
    key_id,
    load_signing_key,
)

Role = Literal["active", "next", "previous"]

#: The registry accepts a token this long after its ``exp`` (distribution's ``Leeway``).
REGISTRY_LEEWAY = timedelta(seconds=60)


@dataclass(frozen=True)
class TrustedKey:
    """One published signing certificate and what identifies it."""

    role: Role
    certificate: x509.Certificate
    kid: str
    algorithm: str
    #: For the previous key: until when tokens it signed may still be valid (None: unknown).
    trusted_until: datetime | None = None

    def in_grace(self, now: datetime) -> bool:
        """Whether tokens this key signed may still be valid at ``now`` (unknown counts)."""
        return self.trusted_until is None or now < self.trusted_until


@dataclass(frozen=True)
class KeySet:
    """The signing certificates in a certificate folder; the first one is the active one."""

    keys: tuple[TrustedKey, ...]

    def get(self, role: Role) -> TrustedKey | None:
        return next((key for key in self.keys if key.role == role), None)

    @property
    def active(self) -> TrustedKey:
        return self.keys[0]


def default_grace(token_ttl: int) -> timedelta:
    """How long the previous key stays trusted: one token lifetime plus the registry's leeway."""
    return timedelta(seconds=token_ttl) + REGISTRY_LEEWAY


def format_time(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _read_trusted_until(path: Path) -> datetime | None:
    """The end of the previous key's grace, or None when the record is missing or unreadable."""
    try:
        until = datetime.fromisoformat(json.loads(path.read_text())["trusted_until"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return until if until.tzinfo is not None else None


def read_key_set(paths: CertPaths, kid_format: KidFormat) -> KeySet:
    """The active, next and previous certificates that exist under ``paths``.

    Raises CertificateError when the active certificate is missing, or a certificate is
    unreadable or holds a key authsvc cannot sign with.
    """
    roles: list[tuple[Role, Path]] = [("active", paths.signing), ("next", paths.signing_next),
                                      ("previous", paths.signing_previous)]
    keys = []
    for role, path in roles:
        if role != "active" and not path.exists():
            continue
        cert = load_certificate(path)
        public = signing_public_key(cert)
        until = _read_trusted_until(paths.signing_previous_info) if role == "previous" else None
        keys.append(TrustedKey(role, cert, key_id(public, kid_format), algorithm_for(public),
                               until))
    return KeySet(tuple(keys))


def _refuse_dropping(previous: TrustedKey | None, now: datetime, force: bool) -> None:
    if previous is not None and previous.in_grace(now) and not force:
        until = (f"until {format_time(previous.trusted_until)}" if previous.trusted_until
                 else "for an unknown time")
        raise Conflict(f"tokens signed by the previous key ({previous.kid}) may be valid {until}; "
                       "wait, or pass --force to stop trusting it now")


def _drop_previous(paths: CertPaths) -> None:
    paths.signing_previous.unlink(missing_ok=True)
    paths.signing_previous_info.unlink(missing_ok=True)


@dataclass(frozen=True)
class Change:
    """What a rotation step left behind, and the previous key it stopped trusting, if any."""

    key_set: KeySet
    dropped: TrustedKey | None = None


def rotate(paths: CertPaths, kid_format: KidFormat, *, key_type: KeyType | None = None,
           now: datetime | None = None, force: bool = False) -> Change:
    """Write a next key pair and publish its certificate beside the active one.

    ``key_type`` defaults to the active key's. A previous key whose grace is over is dropped.
    Raises Conflict when a next key is already waiting or the previous key is still in its
    grace, unless ``force`` (which replaces the one and drops the other).
    """
    moment = now or datetime.now(UTC)
    current = read_key_set(paths, kid_format)
    waiting = current.get("next")
    if waiting is not None and not force:
        raise Conflict(f"a next key ({waiting.kid}) is already waiting: restart the registry "
                       "and run `authsvc certs rotate --activate`, or pass --force to replace it")
    previous = current.get("previous")
    _refuse_dropping(previous, moment, force)
    if key_type is None:
        key_type = "rsa" if current.active.algorithm == "RS256" else "ec"
    _drop_previous(paths)
    key = generate_key(key_type)
    write_private_key(paths.signing_next_key, key)
    write_public_file(paths.signing_next, cert_pem(make_signing_cert(key, moment)))
    write_trust_files(paths, kid_format)
    return Change(read_key_set(paths, kid_format), previous)


def activate(paths: CertPaths, kid_format: KidFormat, *, grace: timedelta,
             now: datetime | None = None, force: bool = False) -> Change:
    """Make the next key the active one; keep the old certificate trusted for ``grace``.

    ``grace`` counts from now and should cover a token lifetime plus the registry's leeway
    (``default_grace``); authsvc must restart right away, since until then it signs with the
    old key. Raises Conflict without a next key, or while an earlier previous key is in its
    grace (unless ``force``); CertificateError when the next key is unsafe, does not match its
    certificate, or ``rootcertbundle.pem``/``jwks.json`` do not publish it yet.
    """
    moment = now or datetime.now(UTC)
    current = read_key_set(paths, kid_format)
    upcoming = current.get("next")
    if upcoming is None:
        raise Conflict("there is no next key to activate: run `authsvc certs rotate` first")
    check_private_key_file(paths.signing_next_key)
    load_signing_key(paths.signing_next_key.read_bytes(), paths.signing_next.read_bytes(),
                     kid_format, now=moment)
    if unpublished(paths, current, kid_format):
        raise CertificateError(
            f"{paths.bundle.name} and {paths.jwks.name} do not publish the active and next keys "
            f"with {kid_format} kids (next: {upcoming.kid}): run `authsvc certs publish`, "
            "restart the registry, then activate")
    older = current.get("previous")
    _refuse_dropping(older, moment, force)
    trusted_until = moment + grace
    write_public_file(paths.signing_previous, paths.signing.read_bytes())
    write_public_file(paths.signing_previous_info, json.dumps(
        {"kid": current.active.kid, "trusted_until": trusted_until.isoformat()}).encode() + b"\n")
    paths.signing_next_key.replace(paths.signing_key)  # the old private key is gone for good
    paths.signing_next.replace(paths.signing)
    write_trust_files(paths, kid_format)
    return Change(read_key_set(paths, kid_format), older)


def prune(paths: CertPaths, kid_format: KidFormat, *, now: datetime | None = None,
          force: bool = False) -> Change:
    """Stop publishing the previous certificate once its grace is over.

    ``Change.dropped`` is None when there was none. Raises Conflict while it is in its grace,
    unless ``force``.
    """
    current = read_key_set(paths, kid_format)
    previous = current.get("previous")
    if previous is None:
        return Change(current)
    _refuse_dropping(previous, now or datetime.now(UTC), force)
    _drop_previous(paths)
    write_trust_files(paths, kid_format)
    return Change(read_key_set(paths, kid_format), previous)


def unpublished(paths: CertPaths, key_set: KeySet, kid_format: KidFormat) -> list[str]:
    """Why ``rootcertbundle.pem`` and ``jwks.json`` differ from ``key_set`` (with ``kid_format``
    kids); an empty list when they publish exactly its keys."""
    problems = []
    try:
        bundle = x509.load_pem_x509_certificates(paths.bundle.read_bytes())
    except (OSError, ValueError):
        bundle = []
        problems.append(f"{paths.bundle.name} is missing or unreadable")
    try:
        listed = json.loads(paths.jwks.read_text())["keys"]
    except (OSError, ValueError, KeyError, TypeError):
        listed = []
        problems.append(f"{paths.jwks.name} is missing or unreadable")
    wanted = [key.certificate for key in key_set.keys]
    if bundle and bundle != wanted:
        problems.append(f"{paths.bundle.name} does not list exactly the signing certificates")
    expected = jwks_document([signing_public_key(c) for c in wanted], kid_format)["keys"]
    if listed and listed != expected:
        problems.append(f"{paths.jwks.name} does not list exactly the signing keys with "
                        f"{kid_format} kids")
    return problems

"""The registry's ``config.yml`` as authsvc needs to see it: its ``auth.token`` section (realm,
service, issuer, rootcertbundle), and whether that bundle holds the signing certificates. Pure.

The file is read by a small reader of YAML block mappings (``key: value`` under indentation,
plain, single- or double-quoted scalars, comments), which is what `authsvc registry-config`
prints and what registry configurations are; flow mappings and anchors are not followed.
The registry reads the file and the bundle only when it starts, and ``REGISTRY_AUTH_TOKEN_*``
variables override them: what the running registry does shows in the token check.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from authsvc.diagnosis.findings import Finding, fail, ok, warn
from authsvc.errors import CertificateError


@dataclass(frozen=True)
class TokenSection:
    """The ``auth.token`` settings of a registry configuration ("" when absent)."""

    realm: str = ""
    service: str = ""
    issuer: str = ""
    rootcertbundle: str = ""


def _scalar(text: str) -> str:
    """A YAML scalar written on one line: quoted (either quote) or plain, comment dropped."""
    text = text.strip()
    if text.startswith('"'):
        end = 1
        while end < len(text) and text[end] != '"':
            end += 2 if text[end] == "\\" else 1
        try:
            return str(json.loads(text[:end + 1]))
        except ValueError:
            return text[1:end]
    if text.startswith("'"):
        end = text.find("'", 1)
        while end != -1 and text[end + 1:end + 2] == "'":
            end = text.find("'", end + 2)
        return text[1:end if end != -1 else None].replace("''", "'")
    for marker in (" #", "\t#"):
        if marker in text:
            text = text[:text.index(marker)]
    return "" if text.startswith("#") else text.strip()


def read_token_section(text: str) -> TokenSection:
    """The ``auth.token`` settings of the YAML configuration ``text``."""
    found: dict[str, str] = {}
    path: list[tuple[int, str]] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        key, _, value = stripped.partition(":")
        key = _scalar(key)
        while path and path[-1][0] >= indent:
            path.pop()
        names = [name for _, name in path]
        if names == ["auth", "token"] and key in TokenSection.__dataclass_fields__:
            found[key] = _scalar(value)
        path.append((indent, key))
    return TokenSection(**found)


def read_registry_config(path: Path) -> TokenSection:
    """The ``auth.token`` settings in the file ``path``; raises CertificateError when it
    cannot be read."""
    try:
        return read_token_section(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise CertificateError(f"cannot read the registry configuration {path}: {e}") from e


def bundle_certificates(path: Path) -> list[x509.Certificate]:
    """The certificates in a PEM bundle; raises CertificateError when it cannot be read."""
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as e:
        raise CertificateError(f"cannot read the bundle {path}: {e}") from e


def config_verdict(section: TokenSection, *, file: Path, realm: str, services: Sequence[str],
                   issuer: str) -> Finding:
    """Whether the ``auth.token`` section of ``file`` names authsvc's realm, one of its
    services and its issuer."""
    check = "registry config"
    if not section.realm and not section.issuer:
        return fail(check, f"{file} has no auth.token section: replace its auth section with "
                    "the one `authsvc registry-config` prints and restart the registry")
    if section.issuer != issuer:
        return fail(check, f"{file} expects tokens from the issuer {section.issuer!r}, but "
                    f"authsvc signs as {issuer!r} (ISSUER): set auth.token.issuer to "
                    f"{issuer!r} and restart the registry, or set ISSUER")
    if section.service not in services:
        return fail(check, f"{file} names the service {section.service!r}, not one of "
                    f"authsvc's SERVICES ({', '.join(services)}): set auth.token.service to "
                    f"{services[0]!r} and restart the registry")
    if section.realm != realm:
        return fail(check, f"{file} sends clients to {section.realm!r}, not to authsvc's realm "
                    f"{realm!r}: set auth.token.realm to it and restart the registry")
    return ok(check, f"{file} names authsvc's realm, service {section.service!r} and issuer "
              f"{issuer!r}")


def bundle_verdict(bundle: Path, held: Sequence[x509.Certificate], *,
                   active: x509.Certificate, next_key: x509.Certificate | None,
                   kid: str) -> Finding:
    """Whether the registry's ``rootcertbundle`` file holds the active signing certificate
    (and the next one, when a rotation waits for it)."""
    check = "rootcertbundle"
    if active not in held:
        return fail(check, f"{bundle} does not hold authsvc's active signing certificate (key "
                    f"{kid}), so the registry refuses every token authsvc signs: point "
                    "auth.token.rootcertbundle at authsvc's rootcertbundle.pem (or copy it "
                    "there) and restart the registry")
    if next_key is not None and next_key not in held:
        return warn(check, f"{bundle} holds the active signing certificate but not the next "
                    "one that `authsvc certs rotate` made: copy rootcertbundle.pem again and "
                    "restart the registry before `authsvc certs rotate --activate`")
    return ok(check, f"{bundle} holds the active signing certificate (key {kid}); the registry "
              "reads it only when it starts")

"""The ``config.yml`` that makes the CNCF distribution registry trust authsvc. Pure."""

import json
from collections.abc import Sequence
from pathlib import Path

from authsvc.pki.certs import CertPaths


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(value)


def _v3_lines(certs: CertPaths, signing_algorithms: Sequence[str]) -> str:
    """distribution 3.x only: trust ``jwks.json`` too, and accept only our algorithms."""
    lines = f"    jwks: {_q(str(certs.jwks))}\n"
    if signing_algorithms:
        lines += f"    signingalgorithms: [{', '.join(_q(a) for a in signing_algorithms)}]\n"
    return lines


def registry_config(*, addr: str, realm: str, service: str, issuer: str, certs: CertPaths,
                    storage_dir: Path, registry_version: int = 2,
                    signing_algorithms: Sequence[str] = ()) -> str:
    """A complete registry configuration: HTTPS, filesystem storage with delete, token auth.

    ``registry_version`` 3 adds ``jwks`` and ``signingalgorithms`` (when given), which 2.x
    does not know; 2 (the Debian package) trusts ``rootcertbundle`` only.
    """
    extra = _v3_lines(certs, signing_algorithms) if registry_version >= 3 else ""
    return f"""\
# docker-registry configuration written by `authsvc registry-config`.
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {_q(str(storage_dir))}
  delete:
    enabled: true
http:
  addr: {_q(addr)}
  tls:
    certificate: {_q(str(certs.registry))}
    key: {_q(str(certs.registry_key))}
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  token:
    realm: {_q(realm)}
    service: {_q(service)}
    issuer: {_q(issuer)}
    rootcertbundle: {_q(str(certs.bundle))}
{extra}"""

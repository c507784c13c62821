"""The ``config.yml`` that makes the CNCF distribution registry trust authsvc. Pure."""

import json
from pathlib import Path

from authsvc.certs import CertPaths


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(value)


def registry_config(*, addr: str, realm: str, service: str, issuer: str, certs: CertPaths,
                    storage_dir: Path) -> str:
    """A complete registry configuration: HTTPS, filesystem storage with delete, token auth."""
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
"""

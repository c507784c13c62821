"""The ``config.yml`` that makes the CNCF distribution registry trust authsvc. Pure."""

import json
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

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


def _notification_lines(url: str, secret: str) -> str:
    """The registry posts its push, pull and delete events to ``url`` with ``secret``.

    Blob events (``application/octet-stream`` in 2.8) are not sent: authsvc records manifests
    and tags only. References (the config and layers of a manifest) come with each manifest
    event, so that authsvc knows the image's size. The registry trusts authsvc's HTTPS
    certificate through Go's system roots: start it with ``SSL_CERT_FILE`` naming authsvc's CA
    (or add the CA to the system's store).
    """
    return f"""\
notifications:
  events:
    includereferences: true
  endpoints:
    - name: authsvc
      url: {_q(url)}
      headers:
        Authorization: [{_q("Bearer " + secret)}]
      timeout: 5s
      threshold: 5
      backoff: 2s
      ignoredmediatypes:
        - application/octet-stream
"""


def registry_config(*, addr: str, realm: str, service: str, issuer: str, certs: CertPaths,
                    storage_dir: Path, registry_version: int = 2,
                    signing_algorithms: Sequence[str] = (),
                    notifications: tuple[str, str] | None = None) -> str:
    """A complete registry configuration: HTTPS, filesystem storage with delete, token auth,
    and, with ``notifications`` (the events URL and the secret), the notifications endpoint.

    ``registry_version`` 3 adds ``jwks`` and ``signingalgorithms`` (when given), which 2.x
    does not know; 2 (the Debian package) trusts ``rootcertbundle`` only.
    """
    extra = _v3_lines(certs, signing_algorithms) if registry_version >= 3 else ""
    if notifications is not None:
        extra += _notification_lines(*notifications)
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


def default_registry_url(addr: str, public_url: str) -> str:
    """How authsvc reaches a registry listening on ``addr`` (``http.addr``): over HTTPS at that
    address, with PUBLIC_URL's host when it listens on every address (``0.0.0.0``, ``[::]``,
    or no host)."""
    host, _, port = addr.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):  # noqa: S104 - a listening address, read
        host = urlsplit(public_url).hostname or "localhost"
        if ":" in host:
            host = f"[{host}]"
    return f"https://{host}:{port or 5000}"


def remember_registry_url(instance: Path, url: str) -> Path:
    """Add ``REGISTRY_URL = url`` to ``instance/config.py`` (made owner-only when new) and
    return its path."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "config.py"
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    text = path.read_text()
    if text and not text.endswith("\n"):
        text += "\n"
    path.write_text(f"{text}# written by `authsvc registry-config`\nREGISTRY_URL = {url!r}\n")
    return path

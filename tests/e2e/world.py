"""What the e2e fixtures hand to the tests: the running services and pushed repositories."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .clients import AuthsvcCli, Credentials
from .oci_layout import OciImage
from .processes import Service

# The tags alice pushes to alice/httpd, as in the tutorial.
HTTPD_TAGS = ("v1", "1", "1.9", "latest")

# make_image(name) -> a distinct one-layer OCI image per name.
ImageFactory = Callable[[str], OciImage]


def new_password() -> str:
    """Return a random password (URL-safe, so it never contains ``:``)."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class AuthsvcInstance:
    """A running ``authsvc serve`` with its instance folder and certificates."""

    url: str
    certs_dir: Path
    admin: Credentials
    cli: AuthsvcCli
    service: Service

    @property
    def ca_file(self) -> Path:
        """Return the CA certificate that clients must trust."""
        return self.certs_dir / "ca.pem"


@dataclass(frozen=True)
class Registry:
    """A running docker-registry that accepts authsvc's tokens."""

    address: str
    port: int
    config_path: Path
    service: Service

    def ref(self, repo: str, tag: str | None = None) -> str:
        """Return ``HOST:PORT/REPO[:TAG]`` for this registry."""
        return f"{self.address}/{repo}" + (f":{tag}" if tag else "")


@dataclass(frozen=True)
class PushedRepo:
    """A repository pushed by its owner, with the tags and the manifest digest."""

    name: str
    owner: Credentials
    tags: tuple[str, ...]
    image: OciImage

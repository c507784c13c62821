"""authsvc's client of the registry's v2 API against a real docker-registry (catalog issue).

The client's tokens are signed with the test site's signing key, as ``registry_client`` signs
them; content is pushed with skopeo by real users through authsvc.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil
import tarfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from authsvc.core.scopes import Scope
from authsvc.core.tokens import TokenIssuer
from authsvc.pki.certs import CertPaths
from authsvc.pki.signing_keys import load_signing_key
from authsvc.registry.client import RegistryClient, RegistryUnavailable

from .clients import Credentials, Skopeo, expect_success, run
from .processes import free_port, https_status, start_service, wait_for
from .world import AuthsvcInstance, ImageFactory, Registry

pytestmark = pytest.mark.e2e

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class Minter:
    """Signs tokens holding exactly the scopes asked for, as authsvc does for itself, and
    remembers what it was asked."""

    def __init__(self, certs_dir: Path) -> None:
        paths = CertPaths(certs_dir)
        key = load_signing_key(paths.signing_key.read_bytes(), paths.signing.read_bytes())
        self.issuer = TokenIssuer(key, "authsvc", 900)
        self.asked: list[list[str]] = []
        self.tokens: list[str] = []

    def __call__(self, scopes: Sequence[Scope]) -> str:
        self.asked.append(sorted(str(s) for s in scopes))
        token = self.issuer.issue("authsvc:test", "registry",
                                  [(s, s.actions) for s in scopes]).token
        self.tokens.append(token)
        return token


def client_of(authsvc: AuthsvcInstance, address: str, minter: Minter | None = None,
              **options: int) -> RegistryClient:
    return RegistryClient(f"https://{address}", ca_file=authsvc.ca_file,
                          mint=minter or Minter(authsvc.certs_dir), **options)


@dataclass(frozen=True)
class IndexImage:
    """An OCI layout holding a two-platform index, with the sizes a registry will report."""

    reference: str
    digest: str
    blob_sizes: dict[str, int]
    child_sizes: dict[str, int]


def _blob(root: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}", len(data)


def _layer(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(content), 1_700_000_000
        tar.addfile(info, io.BytesIO(content))
    return gzip.compress(buffer.getvalue(), mtime=1_700_000_000)


def build_index(root: Path, seed: str) -> IndexImage:
    """Two platform images sharing one layer; arm64 has a second layer of its own."""
    (root / "oci-layout").parent.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    shared = _blob(root, _layer("shared.txt", f"shared by both of {seed}\n".encode()))
    extra = _blob(root, _layer("arm.txt", f"only arm64 of {seed}\n".encode()))
    blobs = {shared[0]: shared[1], extra[0]: extra[1]}
    children, child_sizes = [], {}
    for arch, layers in (("amd64", [shared]), ("arm64", [shared, extra])):
        config = _blob(root, json.dumps({
            "architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": [
                "sha256:" + hashlib.sha256(gzip.decompress((
                    root / "blobs" / "sha256" / d.removeprefix("sha256:")).read_bytes())
                ).hexdigest() for d, _ in layers]}}, sort_keys=True).encode())
        blobs[config[0]] = config[1]
        manifest = _blob(root, json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config[0], "size": config[1]},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": d, "size": s} for d, s in layers]}).encode())
        child_sizes[manifest[0]] = config[1] + sum(s for _, s in layers)
        children.append({"mediaType": OCI_MANIFEST, "digest": manifest[0], "size": manifest[1],
                         "platform": {"os": "linux", "architecture": arch}})
    index = _blob(root, json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                    "manifests": children}).encode())
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_INDEX, "digest": index[0], "size": index[1],
        "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}))
    return IndexImage(f"oci:{root}:multi", index[0], blobs, child_sizes)


@contextmanager
def registry_copy(registry: Registry, authsvc: AuthsvcInstance, workdir: Path,
                  extra_config: str = "") -> Iterator[str]:
    """Another docker-registry on the storage of ``registry`` (its config with another port and
    ``extra_config``), stopped when the block ends; yields its address."""
    port = free_port()
    text = registry.config_path.read_text().replace(registry.address, f"127.0.0.1:{port}")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.yml"
    config.write_text(text + extra_config)
    binary = shutil.which("docker-registry")
    assert binary is not None
    service = start_service(f"docker-registry :{port}", [binary, "serve", str(config)], {},
                            workdir / "registry.log", workdir)
    try:
        wait_for(service, lambda: https_status("127.0.0.1", port, "/v2/", authsvc.ca_file)
                 == 401, "answering /v2/ with 401", 30)
        yield f"127.0.0.1:{port}"
    finally:
        service.stop()


@pytest.fixture(scope="module")
def minter(authsvc: AuthsvcInstance) -> Minter:
    return Minter(authsvc.certs_dir)


@pytest.fixture(scope="module")
def client(authsvc: AuthsvcInstance, registry: Registry, minter: Minter
           ) -> Iterator[RegistryClient]:
    found = client_of(authsvc, registry.address, minter)
    yield found
    found.close()


@pytest.fixture(scope="module")
def pushed(registry: Registry, skopeo: Skopeo, users: dict[str, Credentials],
           make_image: ImageFactory) -> list[str]:
    """alice/one, alice/two and alice/three, each with the tag v1."""
    names = ["alice/one", "alice/two", "alice/three"]
    for name in names:
        expect_success(skopeo.push(make_image(name), registry.ref(name, "v1"), users["alice"]))
    return names


def test_the_catalog_is_followed_across_pages(authsvc: AuthsvcInstance, registry: Registry,
                                              pushed: list[str]) -> None:
    minter = Minter(authsvc.certs_dir)
    one_per_page = client_of(authsvc, registry.address, minter, page_size=1)
    names = list(one_per_page.repositories())
    assert set(pushed) <= set(names) and len(names) == len(set(names))
    assert names == sorted(names)
    # one token for every page: exactly the catalog scope, kept between the pages
    assert minter.asked == [["registry:catalog:*"]]


def test_a_registry_that_allows_fewer_entries_gets_no_n(
        authsvc: AuthsvcInstance, registry: Registry, pushed: list[str],
        tmp_path: Path) -> None:
    """docker-registry answers n above its catalog.maxentries with PAGINATION_NUMBER_INVALID;
    the client then lets the registry choose its page size (2 here) and follows the pages."""
    with registry_copy(registry, authsvc, tmp_path, "catalog:\n  maxentries: 2\n") as address:
        token = Minter(authsvc.certs_dir)([Scope("registry", "catalog", frozenset({"*"}))])
        refused = requests.get(f"https://{address}/v2/_catalog?n=1000", timeout=10,
                               headers={"Authorization": f"Bearer {token}"},
                               verify=str(authsvc.ca_file))
        assert refused.status_code == 400 and "PAGINATION_NUMBER_INVALID" in refused.text
        names = list(client_of(authsvc, address).repositories())
    assert set(pushed) <= set(names) and len(names) == len(set(names))


def test_an_unknown_repository_has_no_tags_and_no_manifests(client: RegistryClient,
                                                            pushed: list[str]) -> None:
    assert client.tags("alice/nothing") == []
    assert client.manifest("alice/nothing", "v1") is None
    assert client.digest("alice/nothing", "v1") is None
    assert client.manifest("alice/one", "no-such-tag") is None
    assert client.manifest("alice/one", "sha256:" + "0" * 64) is None
    assert client.delete_manifest("alice/nothing", "sha256:" + "0" * 64) is False
    assert client.delete_manifest("alice/one", "sha256:" + "0" * 64) is False


def test_an_image_manifest_gives_digest_type_and_size(client: RegistryClient,
                                                      pushed: list[str],
                                                      make_image: ImageFactory) -> None:
    image = make_image("alice/one")
    manifest = json.loads((image.path / "blobs" / "sha256" /
                           image.manifest_digest.removeprefix("sha256:")).read_bytes())
    size = manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
    info = client.manifest("alice/one", "v1")
    assert info is not None
    assert (info.digest, info.media_type, info.size) == (image.manifest_digest, OCI_MANIFEST,
                                                         size)
    assert client.digest("alice/one", "v1") == image.manifest_digest
    assert client.manifest("alice/one", image.manifest_digest) == info
    assert client.tags("alice/one") == ["v1"]


def test_an_index_is_the_size_of_its_distinct_blobs(
        client: RegistryClient, registry: Registry, skopeo: Skopeo,
        users: dict[str, Credentials], tmp_path: Path) -> None:
    image = build_index(tmp_path / "multi", "alice/multi")
    alice = users["alice"]
    expect_success(run(["skopeo", "copy", "--all", "--dest-cert-dir", str(skopeo.cert_dir),
                        "--dest-creds", alice.joined, image.reference,
                        f"docker://{registry.ref('alice/multi', 'v1')}"], skopeo.env))
    info = client.manifest("alice/multi", "v1")
    assert info is not None
    assert (info.digest, info.media_type) == (image.digest, OCI_INDEX)
    # the shared layer counts once: configs + the shared layer + arm64's own layer
    assert info.size == sum(image.blob_sizes.values())
    assert info.size < sum(image.child_sizes.values())
    for digest, size in image.child_sizes.items():
        child = client.manifest("alice/multi", digest)
        assert child is not None and (child.media_type, child.size) == (OCI_MANIFEST, size)


def test_each_call_asks_for_the_narrowest_scope(authsvc: AuthsvcInstance, registry: Registry,
                                                skopeo: Skopeo, users: dict[str, Credentials],
                                                make_image: ImageFactory) -> None:
    image = make_image("alice/gone")
    for tag in ("v1", "v2"):
        expect_success(skopeo.push(image, registry.ref("alice/gone", tag), users["alice"]))
    minter = Minter(authsvc.certs_dir)
    client = client_of(authsvc, registry.address, minter)
    assert client.tags("alice/gone") == ["v1", "v2"]
    assert client.digest("alice/gone", "v1") == image.manifest_digest
    assert client.delete_manifest("alice/gone", image.manifest_digest) is True
    # the registry deletes by digest: both tags went with the manifest
    assert client.tags("alice/gone") == []
    assert minter.asked == [["repository:alice/gone:pull"], ["repository:alice/gone:delete"]]
    result = skopeo.inspect(registry.ref("alice/gone", "v1"), users["alice"])
    assert result.returncode != 0 and re.search("manifest unknown", result.output, re.I), \
        result.describe()


def test_a_stopped_registry_is_unavailable(authsvc: AuthsvcInstance, registry: Registry,
                                           pushed: list[str], tmp_path: Path) -> None:
    minter = Minter(authsvc.certs_dir)
    with registry_copy(registry, authsvc, tmp_path) as address:
        client = client_of(authsvc, address, minter)
        assert client.tags("alice/one") == ["v1"]
    for call in (lambda: list(client.repositories()), lambda: client.tags("alice/one"),
                 lambda: client.manifest("alice/one", "v1"),
                 lambda: client.delete_manifest("alice/one", "sha256:" + "0" * 64)):
        with pytest.raises(RegistryUnavailable) as caught:
            call()
        message = caught.value.message
        assert f"https://{address}" in message and "\n" not in message
        assert caught.value.status == 502
        assert not any(token in message for token in minter.tokens)

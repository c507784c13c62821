"""Build a tiny OCI image layout by hand, so no container daemon is needed.

The layout follows the OCI image-layout spec: an ``oci-layout`` marker, an
``index.json`` naming the manifest by tag, and content-addressed blobs under
``blobs/sha256/``. ``skopeo copy oci:DIR:TAG docker://...`` and
``podman pull oci:DIR:TAG`` both read it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
FIXED_MTIME = 1_700_000_000  # fixed timestamps make the digests reproducible


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: media type, digest and size of one blob."""

    media_type: str
    digest: str
    size: int

    def as_json(self) -> dict[str, object]:
        """Return the descriptor in its OCI JSON form."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class OciImage:
    """An OCI layout directory holding one single-layer image under ``tag``."""

    path: Path
    tag: str
    manifest_digest: str
    layer_digest: str
    file_name: str
    file_content: bytes

    @property
    def reference(self) -> str:
        """Return the transport reference skopeo and podman understand."""
        return f"oci:{self.path}:{self.tag}"


def _write_blob(layout: Path, media_type: str, data: bytes) -> Descriptor:
    """Store ``data`` content-addressed under ``blobs/sha256`` and describe it."""
    digest = hashlib.sha256(data).hexdigest()
    blob_dir = layout / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    (blob_dir / digest).write_bytes(data)
    return Descriptor(media_type, f"sha256:{digest}", len(data))


def _tar_with_file(name: str, content: bytes) -> bytes:
    """Return an uncompressed tar archive holding one regular file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mode = 0o644
        info.mtime = FIXED_MTIME
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _image_config(diff_id: str) -> bytes:
    """Return the image config JSON for a one-layer linux/amd64 image."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "authsvc e2e"}],
    }
    return json.dumps(config, sort_keys=True).encode()


def build_oci_image(layout: Path, tag: str, file_name: str, file_content: bytes) -> OciImage:
    """Write an OCI layout at ``layout`` with one image tagged ``tag``.

    The single layer holds ``file_name`` with ``file_content``. Returns the
    image with the digests a registry will report for it.
    """
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    layer_tar = _tar_with_file(file_name, file_content)
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    layer = _write_blob(layout, LAYER_TYPE, gzip.compress(layer_tar, mtime=FIXED_MTIME))
    config = _write_blob(layout, CONFIG_TYPE, _image_config(diff_id))
    manifest_json = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": config.as_json(),
        "layers": [layer.as_json()],
    }
    manifest = _write_blob(layout, MANIFEST_TYPE, json.dumps(manifest_json).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {**manifest.as_json(), "annotations": {"org.opencontainers.image.ref.name": tag}}
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    return OciImage(layout, tag, manifest.digest, layer.digest, file_name, file_content)


def read_layer_file(layout: Path, tag: str, file_name: str) -> bytes:
    """Return ``file_name`` from the first layer of the image tagged ``tag``.

    Raises ``KeyError`` if the tag or the file is missing.
    """
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    by_tag = {
        entry.get("annotations", {}).get("org.opencontainers.image.ref.name"): entry
        for entry in index["manifests"]
    }
    manifest_digest = by_tag[tag]["digest"].removeprefix("sha256:")
    manifest = json.loads((blobs / manifest_digest).read_bytes())
    layer_digest = manifest["layers"][0]["digest"].removeprefix("sha256:")
    with tarfile.open(blobs / layer_digest, mode="r:*") as tar:
        member = tar.extractfile(file_name.lstrip("/"))
        if member is None:
            raise KeyError(file_name)
        return member.read()

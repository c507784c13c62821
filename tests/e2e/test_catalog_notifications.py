"""The registry tells authsvc what it holds: the real docker-registry posts its notifications
(as ``authsvc registry-config`` configures them) to a real ``authsvc serve``, and the API shows
the tags that skopeo and Docker pushed, with the digests ``skopeo inspect`` reports, and counts
the pulls."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from .catalog_fixtures import (  # noqa: F401 - the fixtures authsvc and registry
    CatalogAuthsvc,
    catalog_authsvc,
    catalog_registry,
    eventually,
)
from .clients import Credentials, Skopeo, expect_success
from .docker_engine import DockerEngine, rootfs_tarball
from .world import ImageFactory, Registry

pytestmark = pytest.mark.e2e


def tags_of(authsvc: CatalogAuthsvc, name: str, creds: Credentials) -> dict[str, Any]:
    return authsvc.tags(name, creds)


def repository(authsvc: CatalogAuthsvc, name: str, creds: Credentials) -> dict[str, Any]:
    answer = authsvc.get(f"/repositories/{name}", creds)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def post_events(authsvc: CatalogAuthsvc, envelope: object, secret: str | None
                ) -> requests.Response:
    headers = {"Content-Type": "application/vnd.docker.distribution.events.v2+json"}
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    return authsvc.api().post(f"{authsvc.url}/api/v1/registry/events", headers=headers,
                              data=json.dumps(envelope), timeout=10)


def pull_event(repository: str, tag: str, digest: str) -> dict[str, Any]:
    """A pull event shaped as distribution's bridge makes it."""
    return {
        "id": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "action": "pull",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                   "size": 400, "length": 400, "repository": repository,
                   "url": f"https://registry/v2/{repository}/manifests/{digest}", "tag": tag},
        "request": {"id": str(uuid.uuid4()), "addr": "127.0.0.1:1", "host": "registry",
                    "method": "GET", "useragent": "test"},
        "actor": {"name": "alice"},
        "source": {"addr": "registry:5000", "instanceID": str(uuid.uuid4())},
    }


@pytest.fixture(scope="module")
def alice_app(registry: Registry, skopeo: Skopeo, users: dict[str, Credentials],
              make_image: ImageFactory) -> dict[str, str]:
    """alice pushes alice/app:v1 and :v2 (two images) with skopeo; tag → digest as skopeo
    inspect reports it."""
    alice = users["alice"]
    digests = {}
    for tag in ("v1", "v2"):
        image = make_image(f"alice/app-{tag}")
        expect_success(skopeo.push(image, registry.ref("alice/app", tag), alice))
        digests[tag] = skopeo.digest(registry.ref("alice/app", tag), alice)
    return digests


def test_skopeo_pushes_are_listed_with_the_digests_skopeo_sees(
        authsvc: CatalogAuthsvc, alice_app: dict[str, str],
        users: dict[str, Credentials]) -> None:
    alice = users["alice"]
    tags = eventually(lambda: (lambda t: t if set(t) == {"v1", "v2"} else None)(
        tags_of(authsvc, "alice/app", alice)), "alice/app's two tags")
    assert {name: tag["digest"] for name, tag in tags.items()} == alice_app
    for tag in tags.values():
        assert tag["pushed_by"] == "alice"
        assert tag["size"] > 0
        assert tag["pushed_at"].endswith("Z")
    repo = repository(authsvc, "alice/app", alice)
    assert repo["visibility"] == "private"
    assert repo["tag_count"] == 2 and repo["pushed_at"] is not None
    # bob may not pull it, so bob is not told it exists; the admin sees it.
    assert authsvc.get("/repositories/alice/app/-/tags", users["bob"]).status_code == 404
    assert "alice/app" not in [r["name"] for r in authsvc.get(
        "/repositories", users["bob"]).json()["items"]]
    assert set(tags_of(authsvc, "alice/app", authsvc.admin)) == {"v1", "v2"}


def test_a_pull_raises_the_pull_count(authsvc: CatalogAuthsvc, registry: Registry,
                                      skopeo: Skopeo, alice_app: dict[str, str],
                                      users: dict[str, Credentials], tmp_path: Path) -> None:
    alice = users["alice"]
    eventually(lambda: tags_of(authsvc, "alice/app", alice), "alice/app listed")
    before = repository(authsvc, "alice/app", alice)
    expect_success(skopeo.pull(registry.ref("alice/app", "v1"), tmp_path / "layout", "v1",
                               alice))
    after = eventually(lambda: (lambda r: r if r["pull_count"] > before["pull_count"] else None)(
        repository(authsvc, "alice/app", alice)), "the pull counted")
    assert after["pull_count"] == before["pull_count"] + 1
    assert after["last_pulled_at"] is not None


def test_a_wrong_secret_records_nothing_and_a_repeated_event_counts_once(
        authsvc: CatalogAuthsvc, alice_app: dict[str, str],
        users: dict[str, Credentials]) -> None:
    alice = users["alice"]
    eventually(lambda: tags_of(authsvc, "alice/app", alice), "alice/app listed")
    event = pull_event("alice/app", "v1", alice_app["v1"])
    before = repository(authsvc, "alice/app", alice)["pull_count"]
    for secret in (None, "authsvc_ns_wrong", authsvc.notification_secret() + "x"):
        answer = post_events(authsvc, {"events": [event]}, secret)
        assert answer.status_code == 401
        assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert repository(authsvc, "alice/app", alice)["pull_count"] == before
    secret = authsvc.notification_secret()
    first = post_events(authsvc, {"events": [event]}, secret)
    assert first.status_code == 200 and first.json()["recorded"] == 1
    again = post_events(authsvc, {"events": [event]}, secret)
    assert again.status_code == 200
    assert (again.json()["recorded"], again.json()["duplicates"]) == (0, 1)
    assert repository(authsvc, "alice/app", alice)["pull_count"] == before + 1
    malformed = post_events(authsvc, {"no events": []}, secret)
    assert malformed.status_code == 400
    assert repository(authsvc, "alice/app", alice)["pull_count"] == before + 1


@pytest.fixture(scope="module")
def docker_engine() -> Iterator[DockerEngine]:
    with DockerEngine.running() as engine:
        yield engine


def test_docker_push_is_listed_with_the_digest_skopeo_sees(
        authsvc: CatalogAuthsvc, registry: Registry, skopeo: Skopeo,
        users: dict[str, Credentials], docker_engine: DockerEngine,
        tmp_path: Path) -> None:
    alice = users["alice"]
    docker = docker_engine.client("alice")
    tarball = rootfs_tarball(tmp_path, "index.html", b"It works! pushed by Docker.\n")
    docker.ok("import", str(tarball), "catalog-e2e/base:latest")
    ref = registry.ref("alice/docker-made", "1.0")
    expect_success(docker.login(registry.address, alice))
    docker.ok("tag", "catalog-e2e/base:latest", ref)
    docker.ok("push", ref)
    digest = skopeo.digest(ref, alice)
    tags = eventually(lambda: tags_of(authsvc, "alice/docker-made", alice),
                      "alice/docker-made listed")
    assert tags["1.0"]["digest"] == digest
    assert tags["1.0"]["media_type"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert tags["1.0"]["size"] > 0
    # `docker pull` fetches the manifest by tag once: one pull.
    before = repository(authsvc, "alice/docker-made", alice)["pull_count"]
    docker.ok("rmi", ref)
    docker.ok("pull", ref)
    after = eventually(lambda: (lambda n: n if n > before else None)(
        repository(authsvc, "alice/docker-made", alice)["pull_count"]), "docker's pull")
    assert after == before + 1

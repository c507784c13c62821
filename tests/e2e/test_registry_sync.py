"""authsvc catches up with the registry and deletes in it (catalog issue): ``authsvc registry
sync`` against a real docker-registry, and ``DELETE /api/v1/repositories/…`` through a real
``authsvc serve`` that knows REGISTRY_URL, checked with skopeo.

The sync tests use a second registry without notifications ("quiet"), so that only the sync
records what it holds; they run first, before anything is pushed to the notifying one. The
last test stops the notifying registry.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from authsvc.core.scopes import Scope

from .catalog_fixtures import (  # noqa: F401 - the fixtures authsvc and registry
    CatalogAuthsvc,
    catalog_authsvc,
    catalog_registry,
)
from .clients import AuthsvcCli, Credentials, Result, Skopeo, expect_success, run
from .processes import free_port, https_status, start_service, wait_for
from .test_registry_client import Minter
from .world import ImageFactory, Registry

pytestmark = pytest.mark.e2e


def tags_of(authsvc: CatalogAuthsvc, name: str, creds: Credentials) -> dict[str, str]:
    """Tag → digest, as ``GET /repositories/{name}/-/tags`` lists them."""
    return {tag: record["digest"] for tag, record in authsvc.tags(name, creds).items()}


def delete(authsvc: CatalogAuthsvc, path: str, creds: Credentials) -> Any:
    return authsvc.api(creds).delete(f"{authsvc.url}/api/v1{path}", timeout=30)


def manifest_unknown(result: Result) -> bool:
    return result.returncode != 0 and re.search("manifest unknown", result.output,
                                                re.I) is not None


@pytest.fixture(scope="module")
def quiet(authsvc: CatalogAuthsvc, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Registry, AuthsvcCli]]:
    """A registry that sends no notifications, and the CLI of the site with REGISTRY_URL
    naming it."""
    workdir = tmp_path_factory.mktemp("quiet-registry")
    port = free_port()
    address = f"127.0.0.1:{port}"
    printed = authsvc.cli.ok("registry-config", "--registry-addr", address, "--storage-dir",
                             str(workdir / "storage"), "--no-notifications")
    config = workdir / "config.yml"
    config.write_text(printed.stdout)
    binary = shutil.which("docker-registry")
    assert binary is not None
    service = start_service("docker-registry (quiet)", [binary, "serve", str(config)], {},
                            workdir / "registry.log", workdir)
    try:
        wait_for(service, lambda: https_status("127.0.0.1", port, "/v2/", authsvc.ca_file)
                 == 401, "answering /v2/ with 401", 30)
        cli = AuthsvcCli(authsvc.cli.executable,
                         {**authsvc.cli.env, "AUTHSVC_REGISTRY_URL": f"https://{address}"},
                         authsvc.cli.cwd)
        yield Registry(address, port, config, service), cli
    finally:
        service.stop()


def sync_lines(cli: AuthsvcCli) -> list[str]:
    return expect_success(cli.run("registry", "sync")).stdout.splitlines()


def test_sync_records_what_the_registry_holds(
        authsvc: CatalogAuthsvc, quiet: tuple[Registry, AuthsvcCli], skopeo: Skopeo,
        users: dict[str, Credentials], make_image: ImageFactory) -> None:
    registry, cli = quiet
    alice = users["alice"]
    image, other = make_image("alice/qa"), make_image("alice/qb")
    for tag in ("v1", "latest"):
        expect_success(skopeo.push(image, registry.ref("alice/qa", tag), alice))
    expect_success(skopeo.push(other, registry.ref("alice/qb", "v1"), alice))
    lines = sync_lines(cli)
    assert lines[:2] == ["added repository alice/qa", "added repository alice/qb"]
    assert lines[2].startswith(f"added tag alice/qa:latest {image.manifest_digest} (")
    assert lines[3].startswith(f"added tag alice/qa:v1 {image.manifest_digest} (")
    assert lines[4].startswith(f"added tag alice/qb:v1 {other.manifest_digest} (")
    assert lines[5:] == ["repositories in the registry: 2; repositories: 2 added, 0 changed, "
                         "0 removed; tags: 3 added, 0 changed, 0 removed"]
    assert tags_of(authsvc, "alice/qa", alice) == {"latest": image.manifest_digest,
                                                   "v1": image.manifest_digest}
    assert tags_of(authsvc, "alice/qb", alice) == {"v1": other.manifest_digest}
    # nothing to do the second time
    assert sync_lines(cli) == ["repositories in the registry: 2; repositories: 0 added, "
                               "0 changed, 0 removed; tags: 0 added, 0 changed, 0 removed"]


def test_sync_sees_changed_and_removed_tags_and_repositories(
        authsvc: CatalogAuthsvc, quiet: tuple[Registry, AuthsvcCli], skopeo: Skopeo,
        users: dict[str, Credentials], make_image: ImageFactory) -> None:
    registry, cli = quiet
    alice = users["alice"]
    old, new = make_image("alice/qa"), make_image("alice/qa-new")
    expect_success(skopeo.push(new, registry.ref("alice/qa", "v1"), alice))
    expect_success(skopeo.delete(registry.ref("alice/qb", "v1"), alice))
    lines = sync_lines(cli)
    assert lines == [
        f"changed tag alice/qa:v1 {old.manifest_digest[:19]}… -> {new.manifest_digest}",
        "changed repository alice/qa",
        "removed tag alice/qb:v1",
        "removed repository alice/qb (its tags; the record and grants stay)",
        "repositories in the registry: 2; repositories: 0 added, 1 changed, 1 removed; tags: "
        "0 added, 1 changed, 1 removed"]
    # a repository the registry no longer lists loses its tags; its record stays
    authsvc.cli.ok("repo", "visibility", "alice/qa", "public")
    storage = registry.config_path.parent / "storage"
    shutil.rmtree(storage / "docker" / "registry" / "v2" / "repositories" / "alice" / "qa")
    lines = sync_lines(cli)
    assert lines[:3] == ["removed tag alice/qa:latest", "removed tag alice/qa:v1",
                         "removed repository alice/qa (its tags; the record and grants stay)"]
    assert tags_of(authsvc, "alice/qa", alice) == {}
    answer = authsvc.get("/repositories/alice/qa", alice)
    assert answer.status_code == 200 and answer.json()["visibility"] == "public"


def test_a_push_while_authsvc_is_down_is_caught_up_by_sync(
        authsvc: CatalogAuthsvc, registry: Registry, skopeo: Skopeo,
        users: dict[str, Credentials], make_image: ImageFactory) -> None:
    """With authsvc stopped, the registry cannot tell it about a push (the push carries a token
    authsvc's key signed before); after the start, ``registry sync`` catches up."""
    image = make_image("alice/late")
    token = Minter(authsvc.certs_dir).issuer.issue("alice", "registry", [(
        Scope("repository", "alice/late", frozenset({"pull", "push"})),
        frozenset({"pull", "push"}))]).token
    authsvc.stop()
    try:
        expect_success(run(["skopeo", "copy", "--dest-cert-dir", str(skopeo.cert_dir),
                            "--dest-registry-token", token, image.reference,
                            f"docker://{registry.ref('alice/late', 'v1')}"], skopeo.env))
    finally:
        authsvc.start()
    result = expect_success(authsvc.cli.run("registry", "sync"))
    assert result.stdout.splitlines()[-1].startswith("repositories in the registry: 1;"), \
        result.stdout
    assert tags_of(authsvc, "alice/late", users["alice"]) == {"v1": image.manifest_digest}


@pytest.fixture(scope="module")
def web(registry: Registry, skopeo: Skopeo, users: dict[str, Credentials],
        make_image: ImageFactory) -> dict[str, str]:
    """alice/web: v1 and latest are one image, v2 another. Returns tag → digest."""
    one, two = make_image("alice/web"), make_image("alice/web-2")
    for tag, image in (("v1", one), ("latest", one), ("v2", two)):
        expect_success(skopeo.push(image, registry.ref("alice/web", tag), users["alice"]))
    return {"v1": one.manifest_digest, "latest": one.manifest_digest, "v2": two.manifest_digest}


def test_a_tag_shared_with_others_is_deleted_only_when_asked(
        authsvc: CatalogAuthsvc, registry: Registry, skopeo: Skopeo,
        users: dict[str, Credentials], web: dict[str, str]) -> None:
    alice = users["alice"]
    expect_success(authsvc.cli.run("registry", "sync"))
    answer = delete(authsvc, "/repositories/alice/web/-/tags/v1", alice)
    assert answer.status_code == 409, answer.text
    assert "latest" in answer.json()["errors"][0]["message"]
    assert skopeo.tags(registry.ref("alice/web"), alice) == {"v1", "latest", "v2"}
    assert tags_of(authsvc, "alice/web", alice) == web
    assert delete(authsvc, "/repositories/alice/web/-/tags/nope", alice).status_code == 404
    answer = delete(authsvc, "/repositories/alice/web/-/tags/v1?with_shared_tags=true", alice)
    assert answer.status_code == 204, answer.text
    for tag in ("v1", "latest"):
        result = skopeo.inspect(registry.ref("alice/web", tag), alice)
        assert manifest_unknown(result), result.describe()
    assert skopeo.tags(registry.ref("alice/web"), alice) == {"v2"}
    assert tags_of(authsvc, "alice/web", alice) == {"v2": web["v2"]}
    audit = authsvc.get("/audit?action=tag.deleted", authsvc.admin).json()["items"]
    assert [(e["actor"], e["target"], e["detail"]) for e in audit] == [
        ("alice", "alice/web:v1", web["v1"])]


def test_the_owner_deletes_a_repository_and_its_record(
        authsvc: CatalogAuthsvc, registry: Registry, skopeo: Skopeo,
        users: dict[str, Credentials], make_image: ImageFactory) -> None:
    alice = users["alice"]
    for tag, seed in (("v1", "alice/gone"), ("v2", "alice/gone-2")):
        expect_success(skopeo.push(make_image(seed), registry.ref("alice/gone", tag), alice))
    authsvc.cli.ok("grant", "bob", "alice/gone", "pull")
    assert delete(authsvc, "/repositories/alice/gone", users["bob"]).status_code == 403
    answer = delete(authsvc, "/repositories/alice/gone", alice)
    assert answer.status_code == 204, answer.text
    for tag in ("v1", "v2"):
        assert manifest_unknown(skopeo.inspect(registry.ref("alice/gone", tag), alice))
    assert authsvc.get("/repositories/alice/gone", alice).status_code == 404
    assert "alice/gone" not in authsvc.cli.ok("grants").stdout


def test_a_delete_grant_holder_deletes_the_images_not_the_record(
        authsvc: CatalogAuthsvc, registry: Registry, skopeo: Skopeo,
        users: dict[str, Credentials], make_image: ImageFactory) -> None:
    alice, bob = users["alice"], users["bob"]
    expect_success(skopeo.push(make_image("alice/kept"), registry.ref("alice/kept", "v1"),
                               alice))
    authsvc.cli.ok("repo", "visibility", "alice/kept", "public")
    authsvc.cli.ok("grant", "bob", "alice/kept", "pull,delete")
    answer = delete(authsvc, "/repositories/alice/kept", bob)
    assert answer.status_code == 204, answer.text
    assert manifest_unknown(skopeo.inspect(registry.ref("alice/kept", "v1"), alice))
    record = authsvc.get("/repositories/alice/kept", alice).json()
    assert (record["visibility"], record["tags"]) == ("public", [])
    assert "alice/kept\tbob\tdelete,pull" in authsvc.cli.ok("grants", "alice/kept").stdout


def test_cli_deletes_a_tag_then_the_repository(
        authsvc: CatalogAuthsvc, registry: Registry, skopeo: Skopeo,
        users: dict[str, Credentials], make_image: ImageFactory) -> None:
    alice = users["alice"]
    image = make_image("alice/cli")
    for tag in ("v1", "v2"):
        expect_success(skopeo.push(image, registry.ref("alice/cli", tag), alice))
    refused = authsvc.cli.run("tag", "delete", "alice/cli:v1", "--yes")
    assert refused.returncode == 1 and refused.stdout == "", refused.describe()
    assert re.fullmatch(r"Error: alice/cli:v1 is sha256:\w+, which the tags v2 share;.*\n",
                        refused.stderr), refused.stderr
    done = authsvc.cli.ok("tag", "delete", "alice/cli:v1", "--with-shared-tags", "--yes")
    assert done.stdout == (f"deleted alice/cli:v1 ({image.manifest_digest}) in the registry\n"
                           "also deleted the tags of the same image: v2\n")
    assert manifest_unknown(skopeo.inspect(registry.ref("alice/cli", "v2"), alice))
    done = authsvc.cli.ok("repo", "delete", "alice/cli", "--yes")
    assert done.stdout == ("deleted 0 manifest(s) of alice/cli in the registry\n"
                           "forgot the repository alice/cli and its grants\n")


def test_a_stopped_registry_is_502_and_nothing_changes(
        authsvc: CatalogAuthsvc, registry: Registry, users: dict[str, Credentials],
        web: dict[str, str]) -> None:
    """Last: stops the module's registry."""
    alice = users["alice"]
    before = tags_of(authsvc, "alice/web", alice)
    registry.service.stop()
    for path in ("/repositories/alice/web/-/tags/v2", "/repositories/alice/web"):
        answer = delete(authsvc, path, alice)
        assert answer.status_code == 502, answer.text
        (error,) = answer.json()["errors"]
        assert error["code"] == "REGISTRY_UNAVAILABLE"
        assert f"https://{registry.address}" in error["message"]
    assert tags_of(authsvc, "alice/web", alice) == before
    assert authsvc.get("/repositories/alice/web", alice).status_code == 200
    result = authsvc.cli.run("registry", "sync")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"Error: the registry at https://{registry.address} ")

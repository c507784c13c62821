"""Access tokens as the password of real clients: skopeo, podman login and docker login
against the real registry, for a person and for a robot account, until revoked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from .clients import Credentials, Podman, Skopeo, expect_failure, expect_success
from .docker_engine import CertsDir, DockerEngine, decode_auth, rootfs_tarball
from .world import AuthsvcInstance, ImageFactory, Registry

pytestmark = pytest.mark.e2e
REFUSED = r"denied|unauthorized|authentication required|invalid username/password"


def create_token(authsvc: AuthsvcInstance, user: str, name: str, permission: str,
                 *repositories: str) -> tuple[int, str]:
    """`authsvc access-token create`; returns (id, secret)."""
    args = ["access-token", "create", user, name, "--permission", permission]
    for repository in repositories:
        args += ["--repository", repository]
    output = authsvc.cli.ok(*args).stdout
    found = re.search(r"created access token (\d+) for", output)
    assert found is not None, output
    return int(found.group(1)), output.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def robot(authsvc: AuthsvcInstance) -> str:
    authsvc.cli.ok("user", "add", "ci", "--robot")
    return "ci"


def test_skopeo_pushes_with_a_write_token_and_not_with_a_read_token(
        authsvc: AuthsvcInstance, registry: Registry, skopeo: Skopeo,
        users: dict[str, Credentials], make_image: ImageFactory) -> None:
    image = make_image("alice/pat")
    _, write = create_token(authsvc, "alice", "laptop", "write")
    _, read = create_token(authsvc, "alice", "dashboard", "read")
    expect_success(skopeo.push(image, registry.ref("alice/pat", "v1"),
                               Credentials("alice", write)))
    expect_failure(skopeo.push(image, registry.ref("alice/pat", "v2"),
                               Credentials("alice", read)), REFUSED)
    expect_success(skopeo.inspect(registry.ref("alice/pat", "v1"), Credentials("alice", read)))
    expect_failure(skopeo.inspect(registry.ref("alice/pat", "v1"), Credentials("bob", write)),
                   REFUSED)


def test_revoked_token_stops_working_for_skopeo_and_podman(
        authsvc: AuthsvcInstance, registry: Registry, skopeo: Skopeo, podman: Podman,
        users: dict[str, Credentials], make_image: ImageFactory, tmp_path: Path) -> None:
    image = make_image("alice/revoked")
    token_id, secret = create_token(authsvc, "alice", "short-lived", "write")
    creds = Credentials("alice", secret)
    expect_success(skopeo.push(image, registry.ref("alice/revoked", "v1"), creds))
    login = podman.login(registry.address, creds, tmp_path / "auth.json")
    assert "Login Succeeded" in expect_success(login).stdout
    authsvc.cli.ok("access-token", "revoke", str(token_id))
    expect_failure(skopeo.inspect(registry.ref("alice/revoked", "v1"), creds), REFUSED)
    expect_failure(podman.login(registry.address, creds, tmp_path / "auth2.json"),
                   r"invalid username/password")


def test_robot_token_is_limited_to_its_repositories(
        authsvc: AuthsvcInstance, registry: Registry, skopeo: Skopeo, robot: str,
        users: dict[str, Credentials], make_image: ImageFactory) -> None:
    authsvc.cli.ok("grant", robot, "alice/*", "pull,push")
    _, secret = create_token(authsvc, robot, "deploy", "write", "ci/*", "alice/deploy")
    creds = Credentials(robot, secret)
    expect_success(skopeo.push(make_image("ci/app"), registry.ref("ci/app", "1"), creds))
    expect_success(skopeo.push(make_image("alice/deploy"), registry.ref("alice/deploy", "1"),
                               creds))
    expect_failure(skopeo.push(make_image("alice/other"), registry.ref("alice/other", "1"),
                               creds), REFUSED)


@pytest.fixture(scope="module")
def docker_engine() -> Iterator[DockerEngine]:
    with DockerEngine.running() as engine:
        yield engine


def test_docker_login_with_a_token_keeps_the_token_and_loses_it_on_revoke(
        authsvc: AuthsvcInstance, registry: Registry, docker_engine: DockerEngine,
        users: dict[str, Credentials], tmp_path: Path) -> None:
    trust = CertsDir()
    try:
        trust.trust(registry.address, authsvc.ca_file)
        base = "authsvc-e2e/pat-base:latest"
        docker_engine.client("importer").ok(
            "import", str(rootfs_tarball(tmp_path, "index.html", b"pat\n")), base)
        token_id, secret = create_token(authsvc, "alice", "docker", "write")
        docker = docker_engine.client("alice-pat")
        login = docker.login(registry.address, Credentials("alice", secret))
        assert "Login Succeeded" in expect_success(login).stdout
        stored = docker.stored_auth(registry.address)
        assert stored is not None and "identitytoken" not in stored
        assert decode_auth(stored) == f"alice:{secret}"
        target = f"{registry.address}/alice/pat-docker:v1"
        docker.ok("tag", base, target)
        expect_success(docker.run("push", target))
        authsvc.cli.ok("access-token", "revoke", str(token_id))
        docker.ok("tag", base, f"{registry.address}/alice/pat-docker:v2")
        expect_failure(docker.run("push", f"{registry.address}/alice/pat-docker:v2"),
                       r"unauthorized|authentication required|denied")
    finally:
        trust.cleanup()

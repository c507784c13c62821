"""Organisations with real clients: the org ``acme``, set up with the authsvc CLI, against the
real docker-registry, with the Docker engine and skopeo.

* team ``developers`` (write on ``acme/*``): alice and carol;
* team ``readers`` (read on ``acme/*``): bob;
* mallory is in no team; olivia owns the org (and is in no test's way).

alice pushes ``acme/app:v1`` with ``docker push`` and ``acme/app:v2`` with skopeo; bob pulls
but may not push; mallory may do neither; carol is refused on the push right after
``authsvc team remove-member``; a robot in team ``ci`` pushes from CI with an access token.
One engine and one base image serve the whole module; every test also passes on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .clients import Credentials, Skopeo, expect_failure, expect_success
from .docker_engine import CertsDir, DockerClient, DockerEngine, rootfs_tarball
from .world import AuthsvcInstance, ImageFactory, Registry, new_password

pytestmark = pytest.mark.e2e

APP = "acme/app"
# What skopeo prints when the registry refuses the scope the token lacks.
DENIED = r"requested access to the resource is denied"
# What docker prints when a push or a pull is refused.
PUSH_DENIED = r"denied: requested access to the resource is denied"
PULL_DENIED = r"pull access denied for .*acme/app"
PUSHED_DIGEST = re.compile(r"v1: digest: (sha256:[0-9a-f]{64}) size: \d+")


@dataclass(frozen=True)
class Acme:
    """The org ``acme`` and the people in it (and one outside it)."""

    owner: Credentials
    developer: Credentials  # stays in developers
    leaver: Credentials  # in developers until a test removes her
    reader: Credentials
    outsider: Credentials


@pytest.fixture(scope="module")
def acme(authsvc: AuthsvcInstance, users: dict[str, Credentials]) -> Acme:
    """Create the org ``acme`` (owner olivia) and its teams developers and readers with the CLI."""
    cli = authsvc.cli
    owner, leaver = Credentials("olivia", new_password()), Credentials("carol", new_password())
    for creds in (owner, leaver):
        cli.add_user(creds)
    cli.ok("org", "create", "acme", "--owner", owner.username)
    cli.ok("team", "create", "acme", "developers", "--description", "push to every acme image")
    cli.ok("team", "grant", "acme", "developers", "acme/*", "write")
    for member in ("alice", leaver.username):
        cli.ok("team", "add-member", "acme", "developers", member)
    cli.ok("team", "create", "acme", "readers")
    cli.ok("team", "grant", "acme", "readers", "acme/*", "read")
    cli.ok("team", "add-member", "acme", "readers", "bob")
    return Acme(owner, users["alice"], leaver, users["bob"], users["mallory"])


@dataclass(frozen=True)
class Docker:
    """One Docker engine for the module, trusting authsvc's CA, with one local base image."""

    engine: DockerEngine
    registry: Registry
    base_image: str

    def ref(self, repo: str, tag: str) -> str:
        """Return ``HOST:PORT/REPO:TAG`` in the test registry."""
        return self.registry.ref(repo, tag)

    def logged_in(self, creds: Credentials) -> DockerClient:
        """Return a client with its own DOCKER_CONFIG after a successful ``docker login``."""
        client = self.engine.client(f"acme-{creds.username}")
        login = expect_success(client.login(self.registry.address, creds))
        assert "Login Succeeded" in login.stdout, login.describe()
        return client


@pytest.fixture(scope="module")
def docker(authsvc: AuthsvcInstance, registry: Registry,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    """Start a private Docker engine and ``docker import`` one small base image."""
    trust = CertsDir()
    try:
        trust.trust(registry.address, authsvc.ca_file)
        with DockerEngine.running() as engine:
            base = "authsvc-e2e/acme-base:latest"
            tarball = rootfs_tarball(tmp_path_factory.mktemp("acme-rootfs"), "index.html",
                                     b"acme\n")
            engine.client("importer").ok("import", str(tarball), base)
            yield Docker(engine, registry, base)
    finally:
        trust.cleanup()


@pytest.fixture(scope="module")
def app_v1(acme: Acme, docker: Docker) -> str:
    """alice (developers) logs in with docker and pushes ``acme/app:v1``; return its digest."""
    alice = docker.logged_in(acme.developer)
    target = docker.ref(APP, "v1")
    alice.ok("tag", docker.base_image, target)
    pushed = expect_success(alice.run("push", target))
    found = PUSHED_DIGEST.search(pushed.stdout)
    assert found is not None, pushed.describe()
    return found.group(1)


def create_token(authsvc: AuthsvcInstance, user: str, name: str, permission: str) -> str:
    """Run ``authsvc access-token create`` and return the secret it prints (last line)."""
    output = authsvc.cli.ok("access-token", "create", user, name,
                            "--permission", permission).stdout
    secret = output.strip().splitlines()[-1]
    assert secret.startswith("authsvc_pat_"), output
    return secret


def test_developer_pushes_with_docker_and_with_skopeo(
        registry: Registry, skopeo: Skopeo, acme: Acme, app_v1: str,
        make_image: ImageFactory) -> None:
    expect_success(skopeo.push(make_image(APP), registry.ref(APP, "v2"), acme.developer))
    assert {"v1", "v2"} <= skopeo.tags(registry.ref(APP), acme.developer)
    assert skopeo.digest(registry.ref(APP, "v1"), acme.developer) == app_v1


def test_reader_pulls_but_may_not_push(
        registry: Registry, skopeo: Skopeo, docker: Docker, acme: Acme, app_v1: str,
        make_image: ImageFactory, tmp_path: Path) -> None:
    expect_success(skopeo.pull(registry.ref(APP, "v1"), tmp_path / "pulled", "v1", acme.reader))
    assert skopeo.digest(registry.ref(APP, "v1"), acme.reader) == app_v1
    expect_failure(skopeo.push(make_image(APP), registry.ref(APP, "bob"), acme.reader), DENIED)

    bob = docker.logged_in(acme.reader)
    v1, theirs = docker.ref(APP, "v1"), docker.ref(APP, "bob")
    bob.ok("rmi", v1)  # untag only (the base image keeps the layer): the pull must resolve v1
    try:
        pulled = expect_success(bob.run("pull", v1))
        assert f"Digest: {app_v1}" in pulled.stdout, pulled.describe()
        assert bob.image_id(v1) == bob.image_id(docker.base_image)
        bob.ok("tag", docker.base_image, theirs)
        expect_failure(bob.run("push", theirs), PUSH_DENIED)
    finally:
        bob.run("tag", docker.base_image, v1)
        bob.run("rmi", theirs)


def test_outsider_may_neither_pull_nor_push(
        registry: Registry, skopeo: Skopeo, docker: Docker, acme: Acme, app_v1: str,
        make_image: ImageFactory, tmp_path: Path) -> None:
    mallory = acme.outsider
    expect_failure(skopeo.inspect(registry.ref(APP, "v1"), mallory), DENIED)
    expect_failure(skopeo.pull(registry.ref(APP, "v1"), tmp_path / "pulled", "v1", mallory),
                   DENIED)
    expect_failure(skopeo.push(make_image(APP), registry.ref(APP, "mallory"), mallory), DENIED)

    client = docker.logged_in(mallory)
    v1 = docker.ref(APP, "v1")
    client.ok("rmi", v1)
    try:
        expect_failure(client.run("pull", v1), PULL_DENIED)
    finally:
        client.run("tag", docker.base_image, v1)


def test_removed_member_is_refused_on_the_next_push(
        authsvc: AuthsvcInstance, registry: Registry, skopeo: Skopeo, acme: Acme,
        make_image: ImageFactory) -> None:
    carol, image = acme.leaver, make_image(APP)
    expect_success(skopeo.push(image, registry.ref(APP, "carol-1"), carol))
    authsvc.cli.ok("team", "remove-member", "acme", "developers", carol.username)
    expect_failure(skopeo.push(image, registry.ref(APP, "carol-2"), carol), DENIED)
    expect_failure(skopeo.inspect(registry.ref(APP, "carol-1"), carol), DENIED)
    assert "carol-2" not in skopeo.tags(registry.ref(APP), acme.developer)


def test_org_robot_pushes_from_ci_with_an_access_token(
        authsvc: AuthsvcInstance, registry: Registry, skopeo: Skopeo, acme: Acme,
        make_image: ImageFactory) -> None:
    cli = authsvc.cli
    cli.ok("user", "add", "acme-ci", "--robot")
    cli.ok("team", "create", "acme", "ci", "--description", "the build pipeline")
    cli.ok("team", "add-member", "acme", "ci", "acme-ci")
    cli.ok("team", "grant", "acme", "ci", APP, "write")
    robot = Credentials("acme-ci", create_token(authsvc, "acme-ci", "pipeline", "write"))

    expect_success(skopeo.push(make_image(APP), registry.ref(APP, "ci"), robot))
    assert "ci" in skopeo.tags(registry.ref(APP), acme.developer)
    other = make_image("acme/other")
    expect_failure(skopeo.push(other, registry.ref("acme/other", "ci"), robot), DENIED)
    # The refusal is the team's permission, not the repository: a developer may push there.
    expect_success(skopeo.push(other, registry.ref("acme/other", "dev"), acme.developer))
    expect_failure(skopeo.inspect(registry.ref("acme/other", "dev"), robot), DENIED)

"""authsvc's container image, built and run with the real Docker engine (Debian's dockerd 20.10).

No image is pulled from anywhere: ``deploy/build-base-image`` makes the base with debootstrap
from the Debian mirror and imports it, the ``Dockerfile`` builds on it (BuildKit, pip reaching
PyPI with this machine's CA bundle as a build secret), and the container runs on the host's
network (the test engine makes no bridge). The container is set up as the README says (``docker
run … init``), serves with the image's own command, and must become healthy by its own
HEALTHCHECK; a real docker-registry configured from ``authsvc registry-config`` inside the
container then takes a push and a pull by a user made with ``docker exec … authsvc user add``.

The base image's root filesystem is cached in ``.cache/container/`` under the hash of the
script, so a second local run skips debootstrap; CI starts clean and builds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from .clients import Credentials, Result, Skopeo, expect_failure, expect_success
from .conftest import _running_in_ci
from .docker_engine import DOCKER, ENGINE_PATH, DockerClient, DockerEngine
from .oci_layout import build_oci_image, read_layer_file
from .processes import LOOPBACK, free_port, https_status, start_service, wait_for
from .world import new_password

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BUILD_BASE = ROOT / "deploy" / "build-base-image"
COMPOSE_FILE = ROOT / "compose.yaml"
CACHE_DIR = ROOT / ".cache" / "container"
BASE_IMAGE = "authsvc-base:bookworm"
IMAGE = "authsvc-e2e:test"
# The image's folders and user (Dockerfile).
CERTS = "/var/lib/authsvc/certs"
INSTANCE = "/var/lib/authsvc/instance"
AUTHSVC_UID = 10001
# Owner-only files in the certificate folder: every private key and secret.
SECRET_FILES = ("ca-key.pem", "authsvc-key.pem", "registry-key.pem", "token-signing-key.pem",
                "notification-secret.json", "web-secret-key")
BUILD_TIMEOUT = 1200
HEALTHY_TIMEOUT = 90.0
STARTUP_TIMEOUT = 30.0
# Where this machine's CA bundle may be, for pip inside the build (a TLS proxy's CA among them).
CA_BUNDLES = (os.environ.get("PIP_CERT", ""), os.environ.get("SSL_CERT_FILE", ""),
              "/etc/ssl/certs/ca-certificates.crt")


def _require(program: str, package: str) -> str:
    """Return the path of ``program``; skip (fail under CI) when it is missing."""
    found = shutil.which(program, path=ENGINE_PATH)
    if found is not None:
        return found
    message = f"{program} not installed (Debian package {package})"
    if _running_in_ci():
        pytest.fail(f"{message}; CI is set, so this is an error", pytrace=False)
    pytest.skip(f"{message}: install it, or set CI=true to make this a failure")


def _build(argv: list[str], env: Mapping[str, str]) -> None:
    """Run a build step to completion; fail the test with its output when it fails."""
    done = subprocess.run(argv, env=dict(env), cwd=ROOT, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited with {done.returncode}\n"
                    f"--- stdout ---\n{done.stdout[-6000:]}\n--- stderr ---\n"
                    f"{done.stderr[-6000:]}", pytrace=False)


def _base_tarball() -> Path:
    """Return the cache file of the base image's root filesystem for this version of the
    script; older versions' files are removed."""
    key = hashlib.sha256(BUILD_BASE.read_bytes()).hexdigest()[:16]
    tarball = CACHE_DIR / f"authsvc-base-{key}.tar"
    if CACHE_DIR.exists():
        for old in CACHE_DIR.glob("authsvc-base-*.tar"):
            if old != tarball:
                old.unlink()
    return tarball


def _ca_bundle() -> Path | None:
    """Return the CA bundle pip in the build should trust, or None for pip's own."""
    for candidate in CA_BUNDLES:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="module")
def engine() -> Iterator[DockerEngine]:
    """A private Docker engine, when debootstrap and dockerd are installed."""
    _require("debootstrap", "debootstrap")
    _require("dockerd", "docker.io")
    with DockerEngine.running() as running:
        yield running


@pytest.fixture(scope="module")
def docker(engine: DockerEngine) -> DockerClient:
    return engine.client("container-test")


@pytest.fixture(scope="module")
def image(docker: DockerClient) -> Iterator[str]:
    """Build the base image and the authsvc image; remove both afterwards."""
    started = time.monotonic()
    env = {**docker.env, "BASE_TARBALL": str(_base_tarball())}
    _build([str(BUILD_BASE), BASE_IMAGE], env)
    based = time.monotonic()
    argv = [DOCKER, "build", "--network", "host", "--tag", IMAGE]
    ca_bundle = _ca_bundle()
    if ca_bundle is not None:
        argv += ["--secret", f"id=pip_ca,src={ca_bundle}"]
    try:
        _build([*argv, "."], {**docker.env, "DOCKER_BUILDKIT": "1"})
        print(f"\nbase image {based - started:.0f}s, authsvc image {time.monotonic() - based:.0f}s")
        yield IMAGE
    finally:
        docker.run("image", "rm", "--force", IMAGE, BASE_IMAGE)


@dataclass(frozen=True)
class Container:
    """The running authsvc container and its volumes (host folders)."""

    name: str
    docker: DockerClient
    port: int
    certs: Path
    instance: Path
    admin: Credentials

    def exec(self, *args: str, stdin: str | None = None) -> Result:
        """Run ``authsvc ARGS`` in the container, as its user."""
        flags = ["--interactive"] if stdin is not None else []
        return self.docker.run("exec", *flags, self.name, "authsvc", *args, stdin=stdin)

    def state(self) -> dict[str, object]:
        """Return ``docker inspect``'s State of the container."""
        result = self.docker.ok("inspect", "--format", "{{json .State}}", self.name)
        state: dict[str, object] = json.loads(result.stdout)
        return state

    def health(self) -> str:
        """Return the HEALTHCHECK's verdict: starting, healthy or unhealthy."""
        health = self.state().get("Health")
        assert isinstance(health, dict), f"the image has no HEALTHCHECK: {self.state()}"
        return str(health["Status"])

    def logs(self) -> str:
        result = self.docker.ok("logs", self.name)
        return result.stdout + result.stderr


def _volume(root: Path, name: str) -> Path:
    """Make the host folder of a volume, owned by the image's user as the image's own is."""
    folder = root / name
    folder.mkdir(mode=0o700)
    os.chown(folder, AUTHSVC_UID, AUTHSVC_UID)
    return folder


@pytest.fixture(scope="module")
def container(image: str, docker: DockerClient, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Container]:
    """Set the volumes up with ``docker run … init`` as the README does, then run the image's
    own command on a free port; wait until the HEALTHCHECK has a verdict."""
    root = tmp_path_factory.mktemp("container")
    certs, instance = _volume(root, "certs"), _volume(root, "instance")
    port = free_port()
    name = f"authsvc-e2e-{secrets.token_hex(4)}"
    admin = Credentials("admin", new_password())
    common = ["--network", "host", "--volume", f"{certs}:{CERTS}",
              "--volume", f"{instance}:{INSTANCE}",
              "--env", f"AUTHSVC_PUBLIC_URL=https://{LOOPBACK}:{port}",
              "--env", f"AUTHSVC_PORT={port}", "--env", "AUTHSVC_BCRYPT_ROUNDS=4"]
    docker.ok("run", "--rm", "--interactive", *common, image, "init", "--admin-password-stdin",
              stdin=admin.password + "\n")
    handle = Container(name, docker, port, certs, instance, admin)
    try:
        # The test cannot wait the image's 30 s interval: only the interval is shortened.
        docker.ok("run", "--detach", "--name", name, "--health-interval", "2s", *common, image)
        deadline = time.monotonic() + HEALTHY_TIMEOUT
        while handle.health() == "starting" and handle.state().get("Running"):
            if time.monotonic() > deadline:
                break
            time.sleep(1)
        yield handle
    finally:
        docker.run("rm", "--force", "--volumes", name)


@pytest.fixture(scope="module")
def registry(container: Container, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[str]:
    """Run docker-registry with the config ``authsvc registry-config`` prints in the container;
    its certificate paths are the container's, which this host reaches through the volume."""
    workdir = tmp_path_factory.mktemp("container-registry")
    address = f"{LOOPBACK}:{free_port()}"
    printed = expect_success(container.exec("registry-config", "--registry-addr", address,
                                             "--storage-dir", str(workdir / "storage")))
    assert CERTS in printed.stdout, printed.stdout
    config = workdir / "config.yml"
    config.write_text(printed.stdout.replace(CERTS, str(container.certs)))
    binary = shutil.which("docker-registry")
    assert binary is not None
    # docker-registry applies REGISTRY_* variables as overrides: none but the CA of authsvc.
    service = start_service("docker-registry", [binary, "serve", str(config)],
                            {"SSL_CERT_FILE": str(container.certs / "ca.pem")},
                            workdir / "registry.log", workdir)
    try:
        port = int(address.rpartition(":")[2])
        wait_for(service, lambda: https_status(LOOPBACK, port, "/v2/",
                                               container.certs / "ca.pem") == 401,
                 "answering /v2/ with 401", STARTUP_TIMEOUT)
        yield address
    finally:
        service.stop()


def _process_tree(pid: int) -> list[int]:
    """Return ``pid`` and all its descendants (from /proc)."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        with contextlib.suppress(FileNotFoundError):
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
    return tree


def _uids(pid: int) -> set[int]:
    """Return the real, effective, saved and filesystem user ids of ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return {int(uid) for uid in line.split()[1:]}
    raise AssertionError(f"no Uid line for {pid}")


def test_container_becomes_healthy(container: Container) -> None:
    state = container.state()
    assert state.get("Running"), f"{state}\n{container.logs()}"
    assert container.health() == "healthy", f"{state}\n{container.logs()}"


def test_every_process_runs_as_authsvc(container: Container) -> None:
    pid = container.state()["Pid"]
    assert isinstance(pid, int) and pid > 0
    processes = _process_tree(pid)
    assert len(processes) >= 3, processes  # the supervisor and its two workers
    assert {pid: _uids(pid) for pid in processes} == {pid: {AUTHSVC_UID} for pid in processes}


def test_private_keys_and_secrets_are_owner_only(container: Container) -> None:
    for name in SECRET_FILES:
        info = (container.certs / name).stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o600, AUTHSVC_UID), name
    database = container.instance / "authsvc.db"
    assert stat.S_IMODE(database.stat().st_mode) & 0o077 == 0


def test_push_and_pull_through_a_registry_that_trusts_the_container(
        container: Container, registry: str, client_env: Mapping[str, str],
        tmp_path: Path) -> None:
    alice = Credentials("alice", new_password())
    expect_success(container.exec("user", "add", alice.username, "--password-stdin",
                                  stdin=alice.password + "\n"))
    cert_dir = tmp_path / "cert-dir"
    cert_dir.mkdir()
    shutil.copyfile(container.certs / "ca.pem", cert_dir / "ca.crt")
    skopeo = Skopeo(client_env, cert_dir)
    image = build_oci_image(tmp_path / "image", "v1", "index.html", b"served from a container\n")
    ref = f"{registry}/alice/web:v1"
    expect_success(skopeo.push(image, ref, alice))
    expect_success(skopeo.pull(ref, tmp_path / "pulled", "v1", alice))
    assert read_layer_file(tmp_path / "pulled", "v1", "index.html") == image.file_content
    # authsvc decides: a private repository is refused to anonymous clients.
    expect_failure(skopeo.pull(ref, tmp_path / "anonymous", "v1", None),
                   r"unauthorized|denied|authentication required")
    logs = container.logs()
    assert "/token" in logs  # the tokens came from the container
    for secret in (alice.password, container.admin.password):
        assert secret not in logs


def test_stops_on_docker_stop(container: Container, docker: DockerClient) -> None:
    started = time.monotonic()
    docker.ok("stop", "--time", "20", container.name)
    took = time.monotonic() - started
    state = container.state()
    assert not state.get("Running")
    assert state.get("ExitCode") == 0, f"{state}\n{container.logs()}"
    assert took < 15, f"docker stop took {took:.1f}s: SIGTERM did not stop authsvc serve"


def test_compose_wires_registry_and_front_to_authsvc() -> None:
    """compose.yaml cannot run here (no registry:2 or nginx image to pull): check what ties its
    services together."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    services = compose["services"]
    assert services["registry"]["image"].startswith("registry:2")
    assert services["authsvc"]["build"]["context"] == "."
    declared = set(compose["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in declared, f"{name} mounts undeclared volume {source}"
    # The registry reads the certificates where registry-config's paths point (the same volume
    # at the same path) and its config from the one-shot service that writes it.
    assert f"certs:{CERTS}:ro" in services["registry"]["volumes"]
    assert services["registry"]["environment"]["SSL_CERT_FILE"] == f"{CERTS}/ca.pem"
    for name in ("registry", "front", "authsvc"):
        assert services[name]["depends_on"]["configure"]["condition"] == \
            "service_completed_successfully"
    configure = " ".join(services["configure"]["command"])
    assert "registry-config" in configure and "proxy-config" in configure

"""Fixtures for the end-to-end tests: authsvc and a real docker-registry on loopback.

Each test module gets its own authsvc instance (database, certificates, HTTPS
server) and its own docker-registry that trusts authsvc's tokens. Clients
(skopeo, podman) run with a private HOME, auth file, policy and registries
configuration, trusting only the CA that ``authsvc init`` generated.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path

import pytest

from .clients import AuthsvcCli, Credentials, Podman, Skopeo, expect_success
from .oci_layout import OciImage, build_oci_image
from .processes import (
    Service,
    console_script,
    free_port,
    https_status,
    site_environment,
    start_service,
    wait_for,
)
from .world import (
    HTTPD_TAGS,
    AuthsvcInstance,
    ImageFactory,
    PushedRepo,
    Registry,
    new_password,
)

REQUIRED_TOOLS = ("docker-registry", "skopeo", "podman")
SERVICES_KEY = pytest.StashKey[list[Service]]()
LOOPBACK = "127.0.0.1"
PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
STARTUP_TIMEOUT = 30.0


def _running_in_ci() -> bool:
    """Return whether the CI environment variable says this is a CI run."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session", autouse=True)
def e2e_tools() -> None:
    """Skip the e2e tests when the real tools are missing, unless CI is set (then fail)."""
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if not missing:
        return
    message = f"end-to-end tools not installed: {', '.join(missing)}"
    if _running_in_ci():
        pytest.fail(f"{message} (CI is set, so missing tools are an error)", pytrace=False)
    pytest.skip(f"{message} (install them, or set CI=true to make this a failure)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the logs of the running servers to every failed test report."""
    report: pytest.TestReport = yield
    if report.failed:
        for service in item.config.stash.get(SERVICES_KEY, []):
            section = f"{service.name} log (pid {service.pid})"
            report.sections.append((section, service.log_tail()))
    return report


@contextlib.contextmanager
def _tracked(config: pytest.Config, service: Service) -> Iterator[Service]:
    """Track ``service`` for failure reports while in use, and always stop it by PID."""
    running = config.stash.setdefault(SERVICES_KEY, [])
    running.append(service)
    try:
        yield service
    finally:
        service.stop()
        running.remove(service)


def _authsvc_executable() -> str:
    """Return the path of the ``authsvc`` console script, or fail the test."""
    found = console_script("authsvc")
    if found is None:
        pytest.fail("the authsvc console script is not installed (run `pip install -e .`)",
                    pytrace=False)
    return found


def _base_environment() -> dict[str, str]:
    """Return this process's environment without AUTHSVC_*, REGISTRY_* and proxy settings."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AUTHSVC_", "REGISTRY_")) and key.lower() not in PROXY_VARIABLES
    }


@pytest.fixture(scope="module")
def authsvc(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[AuthsvcInstance]:
    """Initialise an authsvc instance and run ``authsvc serve`` on a free loopback port."""
    workdir = tmp_path_factory.mktemp("authsvc")
    port = free_port()
    url = f"https://{LOOPBACK}:{port}"
    env = site_environment(workdir, _base_environment(),
                           {"PUBLIC_URL": url, "BCRYPT_ROUNDS": "4"})
    cli = AuthsvcCli(_authsvc_executable(), env, workdir)
    admin = Credentials("admin", new_password())
    cli.ok("init", "--admin", admin.username, "--admin-password-stdin",
           stdin=admin.password + "\n")
    certs_dir = workdir / "certs"
    argv = [cli.executable, "serve", "--host", LOOPBACK, "--port", str(port)]
    service = start_service("authsvc serve", argv, env, workdir / "authsvc.log", workdir)
    with _tracked(request.config, service):
        ca_file = certs_dir / "ca.pem"
        wait_for(service, lambda: https_status(LOOPBACK, port, "/", ca_file) is not None,
                 "answering HTTPS", STARTUP_TIMEOUT)
        yield AuthsvcInstance(url, certs_dir, admin, cli, service)


@pytest.fixture(scope="module")
def registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             authsvc: AuthsvcInstance) -> Iterator[Registry]:
    """Run docker-registry with the config ``authsvc registry-config`` prints, as printed."""
    workdir = tmp_path_factory.mktemp("registry")
    port = free_port()
    address = f"{LOOPBACK}:{port}"
    printed = authsvc.cli.ok("registry-config", "--registry-addr", address,
                             "--storage-dir", str(workdir / "storage"))
    config_path = workdir / "config.yml"
    config_path.write_text(printed.stdout)
    binary = shutil.which("docker-registry")
    assert binary is not None
    # A clean environment: docker-registry applies REGISTRY_* variables as overrides.
    service = start_service("docker-registry", [binary, "serve", str(config_path)], {},
                            workdir / "registry.log", workdir)
    with _tracked(request.config, service):
        wait_for(service, lambda: https_status(LOOPBACK, port, "/v2/", authsvc.ca_file) == 401,
                 "answering /v2/ with 401", STARTUP_TIMEOUT)
        yield Registry(address, port, config_path, service)


def _toml(sections: Mapping[str, Mapping[str, str]]) -> str:
    """Return TOML text for tables of string settings (paths here need no escaping)."""
    lines = []
    for table, settings in sections.items():
        lines.append(f"[{table}]")
        lines.extend(f'{key} = "{value}"' for key, value in settings.items())
    return "\n".join(lines) + "\n"


def _write_client_config(root: Path) -> dict[str, str]:
    """Write private containers configuration under ``root``; return the client environment.

    Covers the trust policy, registries.conf, podman's storage (vfs, no
    daemon, no overlay mounts) and engine settings (cgroupfs, file events,
    temporary folders), and an empty auth file.
    """
    home, runtime, tmp = root / "home", root / "xdg-runtime", root / "tmp"
    policy_dir = home / ".config" / "containers"  # containers/image reads it before /etc
    for folder in (policy_dir, runtime, tmp, root / "podman-tmp"):
        folder.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    policy = {"default": [{"type": "insecureAcceptAnything"}]}
    (policy_dir / "policy.json").write_text(json.dumps(policy))
    registries = root / "registries.conf"
    registries.write_text('unqualified-search-registries = []\nshort-name-mode = "disabled"\n')
    storage = root / "storage.conf"
    storage.write_text(_toml({"storage": {
        "driver": "vfs", "graphroot": str(root / "storage"), "runroot": str(root / "runroot"),
    }}))
    containers = root / "containers.conf"
    containers.write_text(_toml({
        "engine": {
            "cgroup_manager": "cgroupfs",
            "events_logger": "file",
            "events_logfile_path": str(root / "events.log"),
            "tmp_dir": str(root / "podman-tmp"),
            "image_copy_tmp_dir": str(tmp),
            "volume_path": str(root / "volumes"),
        },
        "network": {"network_config_dir": str(root / "networks")},
    }))
    auth_file = root / "auth.json"
    auth_file.write_text(json.dumps({"auths": {}}))
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "REGISTRY_AUTH_FILE": str(auth_file),
        "CONTAINERS_REGISTRIES_CONF": str(registries),
        "CONTAINERS_STORAGE_CONF": str(storage),
        "CONTAINERS_CONF": str(containers),
    }


@pytest.fixture(scope="module")
def client_env(tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, str]:
    """Return the private environment every skopeo and podman run uses."""
    return _write_client_config(tmp_path_factory.mktemp("clients"))


@pytest.fixture(scope="module")
def client_cert_dir(tmp_path_factory: pytest.TempPathFactory, authsvc: AuthsvcInstance) -> Path:
    """Return a ``--cert-dir`` folder holding authsvc's CA as ``ca.crt``.

    The same CA must vouch for the registry and for the token realm, because
    containers/image fetches tokens with the registry's TLS settings.
    """
    cert_dir = tmp_path_factory.mktemp("cert-dir")
    shutil.copyfile(authsvc.ca_file, cert_dir / "ca.crt")
    return cert_dir


@pytest.fixture(scope="module")
def skopeo(client_env: Mapping[str, str], client_cert_dir: Path) -> Skopeo:
    """Return skopeo configured for the test registry."""
    return Skopeo(client_env, client_cert_dir)


@pytest.fixture(scope="module")
def podman(client_env: Mapping[str, str], client_cert_dir: Path) -> Podman:
    """Return podman with private vfs storage, configured for the test registry."""
    return Podman(client_env, client_cert_dir)


@pytest.fixture(scope="session")
def make_image(tmp_path_factory: pytest.TempPathFactory) -> ImageFactory:
    """Return a factory building a distinct one-layer OCI image per name.

    Distinct content per repository keeps layers from being shared, so no
    push depends on a cross-repository blob mount.
    """
    root = tmp_path_factory.mktemp("oci")
    built: dict[str, OciImage] = {}

    def make(name: str) -> OciImage:
        if name not in built:
            slug = name.replace("/", "_").replace(":", "_")
            content = f"It works! This is {name}.\n".encode()
            built[name] = build_oci_image(root / slug, "latest", "index.html", content)
        return built[name]

    return make


@pytest.fixture(scope="module")
def users(authsvc: AuthsvcInstance) -> dict[str, Credentials]:
    """Create the ordinary users alice, bob and mallory with random passwords."""
    created = {name: Credentials(name, new_password()) for name in ("alice", "bob", "mallory")}
    for creds in created.values():
        authsvc.cli.add_user(creds)
    return created


@pytest.fixture(scope="module")
def alice_httpd(registry: Registry, skopeo: Skopeo, users: dict[str, Credentials],
                make_image: ImageFactory) -> PushedRepo:
    """Have alice push ``alice/httpd`` with the tags v1, 1, 1.9 and latest."""
    image = make_image("alice/httpd")
    for tag in HTTPD_TAGS:
        expect_success(skopeo.push(image, registry.ref("alice/httpd", tag), users["alice"]))
    return PushedRepo("alice/httpd", users["alice"], HTTPD_TAGS, image)

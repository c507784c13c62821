"""authsvc and docker-registry wired both ways, for the catalog tests: authsvc knows where the
registry is (``REGISTRY_URL``, as ``authsvc registry-config`` writes it) and the registry posts
its notifications to authsvc, trusting authsvc's CA through ``SSL_CERT_FILE`` (Go's HTTP client
has no per-endpoint CA setting in distribution 2.8 or 3.x).

A test module takes these in place of the conftest ones by importing them::

    from .catalog_fixtures import catalog_authsvc, catalog_registry  # noqa: F401 - fixtures

which registers them as ``authsvc`` and ``registry``; every other fixture (``users``,
``skopeo``, ``podman``…) then uses them. ``authsvc`` can be stopped and started again
(``stop()``, ``start()``), to push while it is down.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from .clients import AuthsvcCli, Credentials
from .conftest import (
    LOOPBACK,
    STARTUP_TIMEOUT,
    _authsvc_executable,
    _base_environment,
    _tracked,
)
from .processes import Service, free_port, https_status, site_environment, start_service, wait_for
from .world import Registry, new_password


@dataclass
class CatalogAuthsvc:
    """A running ``authsvc serve`` that knows its registry; it can be stopped and started."""

    url: str
    certs_dir: Path
    admin: Credentials
    cli: AuthsvcCli
    registry_port: int
    argv: list[str]
    env: dict[str, str]
    workdir: Path
    service: Service
    starts: int = field(default=1)

    @property
    def ca_file(self) -> Path:
        return self.certs_dir / "ca.pem"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.service.stop()

    def start(self) -> None:
        self.starts += 1
        self.service = start_service("authsvc serve", self.argv, self.env,
                                     self.workdir / f"authsvc-{self.starts}.log", self.workdir)
        wait_for(self.service, lambda: https_status(LOOPBACK, self.port, "/",
                                                    self.ca_file) is not None,
                 "answering HTTPS", STARTUP_TIMEOUT)

    def notification_secret(self) -> str:
        return str(json.loads((self.certs_dir / "notification-secret.json").read_text())
                   ["current"])

    def api(self, creds: Credentials | None = None) -> requests.Session:
        """A session for ``/api/v1`` as ``creds`` (anonymous when None), trusting only the
        CA."""
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.ca_file)
        if creds is not None:
            session.auth = (creds.username, creds.password)
        return session

    def get(self, path: str, creds: Credentials | None = None) -> requests.Response:
        return self.api(creds).get(f"{self.url}/api/v1{path}", timeout=10)

    def tags(self, name: str, creds: Credentials | None) -> dict[str, Any]:
        """Tag name → tag, as ``GET /repositories/{name}/-/tags`` lists them ({} for 404)."""
        answer = self.get(f"/repositories/{name}/-/tags", creds)
        if answer.status_code == 404:
            return {}
        assert answer.status_code == 200, answer.text
        return {tag["name"]: tag for tag in answer.json()["items"]}


def eventually(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """The first truthy result of ``check``, polled until ``timeout`` (the registry sends its
    notifications after it answered the client)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last result: {result!r}")
        time.sleep(0.2)


@pytest.fixture(scope="module", name="authsvc")
def catalog_authsvc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogAuthsvc]:
    """``authsvc init`` and ``authsvc serve``, with REGISTRY_URL naming the registry's port
    (set in the environment, as an operator would; ``registry-config`` writes it to
    ``instance/config.py`` only when it is not set, which ``tests/test_registry_config.py``
    shows)."""
    workdir = tmp_path_factory.mktemp("authsvc-catalog")
    port, registry_port = free_port(), free_port()
    url = f"https://{LOOPBACK}:{port}"
    env = site_environment(workdir, _base_environment(), {
        "PUBLIC_URL": url, "BCRYPT_ROUNDS": "4",
        "REGISTRY_URL": f"https://{LOOPBACK}:{registry_port}"})
    cli = AuthsvcCli(_authsvc_executable(), env, workdir)
    admin = Credentials("admin", new_password())
    cli.ok("init", "--admin", admin.username, "--admin-password-stdin",
           stdin=admin.password + "\n")
    argv = [cli.executable, "serve", "--host", LOOPBACK, "--port", str(port)]
    service = start_service("authsvc serve", argv, env, workdir / "authsvc.log", workdir)
    instance = CatalogAuthsvc(url, workdir / "certs", admin, cli, registry_port, argv, env,
                              workdir, service)
    try:
        wait_for(service, lambda: https_status(LOOPBACK, port, "/", instance.ca_file)
                 is not None, "answering HTTPS", STARTUP_TIMEOUT)
        yield instance
    finally:
        instance.service.stop()


@pytest.fixture(scope="module", name="registry")
def catalog_registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             authsvc: CatalogAuthsvc) -> Iterator[Registry]:
    """docker-registry with the configuration ``authsvc registry-config`` prints, as printed
    (notifications included), trusting authsvc's CA for them through SSL_CERT_FILE."""
    workdir = tmp_path_factory.mktemp("registry-catalog")
    address = f"{LOOPBACK}:{authsvc.registry_port}"
    printed = authsvc.cli.ok("registry-config", "--registry-addr", address,
                             "--storage-dir", str(workdir / "storage"))
    config_path = workdir / "config.yml"
    config_path.touch(mode=0o600)
    config_path.write_text(printed.stdout)
    binary = shutil.which("docker-registry")
    assert binary is not None
    env = {"SSL_CERT_FILE": str(authsvc.ca_file)}
    service = start_service("docker-registry", [binary, "serve", str(config_path)], env,
                            workdir / "registry.log", workdir)
    with _tracked(request.config, service):
        wait_for(service, lambda: https_status(LOOPBACK, authsvc.registry_port, "/v2/",
                                               authsvc.ca_file) == 401,
                 "answering /v2/ with 401", STARTUP_TIMEOUT)
        yield Registry(address, authsvc.registry_port, config_path, service)

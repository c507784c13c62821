"""Signing-key rotation against the real docker-registry, with real skopeo.

Push and pull keep working across ``authsvc certs rotate``, a registry restart, ``authsvc certs
rotate --activate`` and an authsvc restart; a token signed by the old key and one signed by the
new key both work against the registry started with the rotated bundle, until ``certs prune``
and the next registry restart retire the old key.

This module runs its own authsvc and registry (not the shared fixtures) because it restarts
both, on the same ports so the registry's realm stays valid. Both are stopped by PID.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import ssl
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from authsvc.core.scopes import Scope
from authsvc.core.tokens import TokenIssuer
from authsvc.pki.certs import cert_pem, generate_key, make_signing_cert
from authsvc.pki.signing_keys import load_signing_key

from .clients import (
    AuthsvcCli,
    Credentials,
    Result,
    Skopeo,
    expect_failure,
    expect_success,
    run,
)
from .processes import Service, free_port, https_status, start_service, wait_for
from .world import ImageFactory, new_password

pytestmark = pytest.mark.e2e

LOOPBACK = "127.0.0.1"
REPO = "alice/rotation"
STARTUP_TIMEOUT = 30.0
# What skopeo prints when the registry refuses the bearer token it was given.
REFUSED = r"unauthorized: authentication required"


class Restartable:
    """A server this module starts, restarts and stops by PID; each run logs to its own file."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], workdir: Path,
                 ready: Callable[[], bool], what: str) -> None:
        self.name, self.argv, self.env, self.workdir = name, argv, env, workdir
        self.ready, self.what = ready, what
        self.service: Service | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        log = self.workdir / f"{self.name.replace(' ', '-')}-{self.runs}.log"
        self.service = start_service(self.name, self.argv, self.env, log, self.workdir)
        wait_for(self.service, self.ready, self.what, STARTUP_TIMEOUT)

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            assert not self.service.is_running()
            self.service = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class Site:
    """authsvc and the registry that trusts it, with what the test needs to drive them."""

    cli: AuthsvcCli
    authsvc: Restartable
    registry: Restartable
    authsvc_port: int
    registry_address: str
    certs: Path
    workdir: Path

    @property
    def ca_file(self) -> Path:
        return self.certs / "ca.pem"

    def ref(self, tag: str) -> str:
        return f"{self.registry_address}/{REPO}:{tag}"

    def kids(self) -> dict[str, str]:
        """role -> kid, from ``authsvc certs status``."""
        lines = self.cli.ok("certs", "status").stdout.splitlines()
        return {line.split("\t")[0]: line.split("\t")[2] for line in lines if "\t" in line}

    def token(self, creds: Credentials, scope: str) -> str:
        """A token from ``GET /token``, as a client would fetch it."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        connection = http.client.HTTPSConnection(LOOPBACK, self.authsvc_port, timeout=10,
                                                 context=context)
        basic = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        try:
            connection.request("GET", f"/token?service=registry&scope={scope}",
                               headers={"Authorization": f"Basic {basic}"})
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        assert response.status == 200, body
        return str(json.loads(body)["token"])


def _authsvc_executable() -> str:
    found = shutil.which("authsvc") or shutil.which("authsvc", path=str(Path(sys.executable)
                                                                         .parent))
    if found is None:
        pytest.fail("the authsvc console script is not installed (run `pip install -e .`)")
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A fresh authsvc instance and a docker-registry configured by ``registry-config``."""
    workdir = tmp_path_factory.mktemp("rotation")
    authsvc_port, registry_port = free_port(), free_port()
    certs = workdir / "certs"
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AUTHSVC_", "REGISTRY_"))
           and key.lower() not in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}}
    env.update(AUTHSVC_INSTANCE=str(workdir / "instance"), AUTHSVC_CERTS_DIR=str(certs),
               AUTHSVC_PUBLIC_URL=f"https://{LOOPBACK}:{authsvc_port}",
               AUTHSVC_BCRYPT_ROUNDS="4")
    cli = AuthsvcCli(_authsvc_executable(), env, workdir)
    cli.ok("init", "--admin", "admin", "--admin-password-stdin", stdin=new_password() + "\n")
    address = f"{LOOPBACK}:{registry_port}"
    config = workdir / "registry.yml"
    config.write_text(cli.ok("registry-config", "--registry-addr", address,
                             "--storage-dir", str(workdir / "storage")).stdout)
    binary = shutil.which("docker-registry")
    assert binary is not None
    ca_file = certs / "ca.pem"
    authsvc = Restartable(
        "authsvc serve", [cli.executable, "serve", "--host", LOOPBACK, "--port",
                          str(authsvc_port), "--workers", "1"], env, workdir,
        lambda: https_status(LOOPBACK, authsvc_port, "/", ca_file) is not None,
        "answering HTTPS")
    registry = Restartable(  # a clean environment: REGISTRY_* variables would override
        "docker-registry", [binary, "serve", str(config)], {}, workdir,
        lambda: https_status(LOOPBACK, registry_port, "/v2/", ca_file) == 401,
        "answering /v2/ with 401")
    try:
        authsvc.start()
        registry.start()
        yield Site(cli, authsvc, registry, authsvc_port, address, certs, workdir)
    finally:
        registry.stop()
        authsvc.stop()


@pytest.fixture(scope="module")
def skopeo(site: Site, client_env: Mapping[str, str],
           tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    cert_dir = tmp_path_factory.mktemp("rotation-cert-dir")
    shutil.copyfile(site.ca_file, cert_dir / "ca.crt")
    return Skopeo(client_env, cert_dir)


def pull_with_token(skopeo: Skopeo, site: Site, tag: str, token: str) -> Result:
    """Pull with a bearer token given to skopeo, so no realm is asked: the registry alone
    decides whether it trusts the key that signed ``token``."""
    layout = site.workdir / "pulled"
    return run(["skopeo", "copy", "--src-tls-verify=true", "--src-cert-dir",
                str(skopeo.cert_dir), "--src-registry-token", token, f"docker://{site.ref(tag)}",
                f"oci:{layout}:{tag}"], skopeo.env)


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def stranger_token() -> str:
    """A well-formed token for alice signed by a key the registry was never told about."""
    key = generate_key()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    signing = load_signing_key(pem, cert_pem(make_signing_cert(key, datetime.now(UTC))))
    scope = Scope("repository", REPO, frozenset({"pull"}))
    return TokenIssuer(signing, "authsvc", 300).issue("alice", "registry",
                                                     [(scope, frozenset({"pull"}))]).token


def test_push_and_pull_keep_working_through_a_rotation(
        site: Site, skopeo: Skopeo, make_image: ImageFactory) -> None:
    alice = Credentials("alice", new_password())
    site.cli.add_user(alice)
    scope = f"repository:{REPO}:pull"

    def push(tag: str) -> None:
        expect_success(skopeo.push(make_image(f"{REPO}:{tag}"), site.ref(tag), alice))

    def pulls(tag: str, token: str) -> None:
        expect_success(pull_with_token(skopeo, site, tag, token))

    # Before: one key, A.
    kid_a = site.kids()["active"]
    push("v0")
    token_a = site.token(alice, scope)
    assert kid_of(token_a) == kid_a
    pulls("v0", token_a)
    expect_failure(pull_with_token(skopeo, site, "v0", stranger_token()), REFUSED)

    # 1. rotate: the next key N is published; nothing signs with it yet.
    rotated = site.cli.ok("certs", "rotate").stdout
    assert "Restart the registry now so it trusts the new key" in rotated
    kid_n = site.kids()["next"]
    assert kid_n != kid_a
    push("v1")  # the registry still runs with the old bundle, authsvc still signs with A

    # 2. the registry restarts with the bundle holding A and N.
    site.registry.restart()
    push("v2")
    pulls("v2", token_a)

    # 3. activate: N signs from authsvc's next start; the running process keeps A.
    activated = site.cli.ok("certs", "rotate", "--activate").stdout
    assert "Restart authsvc now" in activated and "The registry needs no restart" in activated
    assert site.kids()["active"] == kid_n and site.kids()["previous"] == kid_a
    assert kid_of(site.token(alice, scope)) == kid_a
    push("v3")

    # 4. authsvc restarts and signs with N; the registry (not restarted) trusts both keys.
    site.authsvc.restart()
    token_n = site.token(alice, scope)
    assert kid_of(token_n) == kid_n
    push("v4")
    for tag in ("v0", "v4"):
        pulls(tag, token_a)  # a token signed by the old key, still in its lifetime
        pulls(tag, token_n)  # a token signed by the new key
    expect_failure(pull_with_token(skopeo, site, "v4", stranger_token()), REFUSED)
    assert skopeo.tags(f"{site.registry_address}/{REPO}", alice) == {
        "v0", "v1", "v2", "v3", "v4"}

    # 5. prune waits for the grace unless forced; after the next registry restart A is retired.
    assert "may be valid until" in site.cli.run("certs", "prune").output
    site.cli.ok("certs", "prune", "--force")
    pulls("v4", token_a)  # the running registry still trusts what it read at start
    site.registry.restart()
    expect_failure(pull_with_token(skopeo, site, "v4", token_a), REFUSED)
    pulls("v4", token_n)
    push("v5")

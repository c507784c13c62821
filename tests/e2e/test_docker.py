"""The tutorial with the real Docker engine (Debian's dockerd 20.10 and ``/usr/bin/docker``).

Run twice:

* ``loopback``: authsvc and docker-registry on 127.0.0.1 (the conftest fixtures).
  dockerd treats 127.0.0.0/8 as an insecure registry and verifies no
  certificate there, which :func:`test_tls_is_verified` shows.
* ``netns``: authsvc and docker-registry inside a network namespace of the
  test's own, on a 10.213.x.y address reached through a veth pair. There
  dockerd verifies the registry's certificate and the realm's, trusting only
  ``/etc/docker/certs.d/HOST:PORT/ca.crt``.

``docker login`` gets a refresh token (``offline_token=true&client_id=docker``)
that the CLI stores as ``identitytoken`` instead of the password; pushes and
pulls then use ``POST /token`` with ``grant_type=refresh_token``. The authsvc
audit trail (one JSON line per token in its log) shows which grant each request used.

Tests that change shared state (visibility, local tags) undo it, so each test
also passes on its own.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from .audit_log import event, scope_actions, token_lines
from .audit_log import grants as audit_grants
from .clients import AuthsvcCli, Credentials, Result
from .docker_engine import CertsDir, DockerClient, DockerEngine, decode_auth, rootfs_tarball
from .netns import NetNamespace, network_namespace
from .processes import Service, free_port, https_status, settle_log, start_service, wait_for
from .world import HTTPD_TAGS, AuthsvcInstance, new_password

pytestmark = pytest.mark.e2e

NS_REGISTRY_PORT = 5000
NS_AUTHSVC_PORT = 5001
STARTUP_TIMEOUT = 30.0
SERVICE = "registry"
PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}

# What docker prints when the registry refuses the token's scope.
PUSH_DENIED = r"denied: requested access to the resource is denied"
PULL_DENIED = r"pull access denied for .*alice/httpd"
# What docker prints when the token service refuses a revoked identity token (401).
UNAUTHORIZED = r"unauthorized: authentication required"
UNTRUSTED = r"x509: certificate signed by unknown authority"


def _authsvc_executable() -> str:
    """Return the path of the ``authsvc`` console script."""
    beside_python = str(Path(sys.executable).parent)
    found = shutil.which("authsvc") or shutil.which("authsvc", path=beside_python)
    if found is None:
        pytest.fail("the authsvc console script is not installed (pip install -e .)", pytrace=False)
    return found


def _authsvc_env(workdir: Path, public_url: str) -> dict[str, str]:
    """Return the environment of an authsvc instance living in ``workdir``."""
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith(("AUTHSVC_", "REGISTRY_"))
             and key.lower() not in PROXY_VARIABLES}
    return {**clean, "AUTHSVC_INSTANCE": str(workdir / "instance"),
            "AUTHSVC_CERTS_DIR": str(workdir / "certs"), "AUTHSVC_PUBLIC_URL": public_url,
            "AUTHSVC_BCRYPT_ROUNDS": "4"}


@dataclass
class Site:
    """authsvc and docker-registry as dockerd reaches them, plus the engine and trust store."""

    kind: str
    address: str  # the registry, HOST:PORT
    authsvc: AuthsvcInstance
    registry: Service
    users: dict[str, Credentials]
    engine: DockerEngine
    certs_d: CertsDir
    base_image: str  # a local image made with `docker import`
    netns: NetNamespace | None
    workdir: Path

    @property
    def host(self) -> str:
        """Return the host part of the registry address."""
        return self.address.rsplit(":", 1)[0]

    @property
    def verifies_tls(self) -> bool:
        """Return whether dockerd checks certificates for this registry (not on 127.0.0.0/8)."""
        return self.netns is not None

    def ref(self, repo: str, tag: str) -> str:
        """Return ``HOST:PORT/REPO:TAG``."""
        return f"{self.address}/{repo}:{tag}"

    def client(self, name: str) -> DockerClient:
        """Return a docker client with a private DOCKER_CONFIG named after this site."""
        return self.engine.client(f"{self.kind}-{name}")

    def log_mark(self) -> int:
        """Return the current size of the authsvc log, to read what is logged after it."""
        settle_log()
        return self.authsvc.service.log_path.stat().st_size

    def log_since(self, mark: int) -> list[str]:
        """Return the lines authsvc logged after ``mark`` (token lines and its access log)."""
        settle_log()
        with self.authsvc.service.log_path.open("rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace").splitlines()

    def issued_since(self, mark: int) -> list[str]:
        """Return the audit lines of tokens authsvc issued after ``mark``."""
        return token_lines(self.log_since(mark))

    def diagnostics(self) -> str:
        """Return the ends of the authsvc, registry and dockerd logs."""
        return "\n".join([
            f"--- authsvc log ---\n{self.authsvc.service.log_tail(4000)}",
            f"--- registry log ---\n{self.registry.log_tail(3000)}",
            f"--- dockerd log ---\n{self.engine.log_tail(3000)}",
        ])

    def ok(self, result: Result) -> Result:
        """Assert that a command succeeded; show the tool output and the server logs if not."""
        assert result.returncode == 0, f"{result.describe()}\n{self.diagnostics()}"
        return result

    def fails(self, result: Result, pattern: str) -> Result:
        """Assert a non-zero exit and output matching ``pattern`` (case-insensitive)."""
        assert result.returncode != 0, f"expected a failure\n{result.describe()}"
        assert re.search(pattern, result.output, re.IGNORECASE), (
            f"output does not match {pattern!r}\n{result.describe()}\n{self.diagnostics()}")
        return result

    def refresh_token_ids(self, user: str, client_id: str = "docker") -> set[int]:
        """Return the ids ``authsvc refresh-token list USER`` shows for ``client_id``."""
        listed = self.authsvc.cli.ok("refresh-token", "list", user)
        ids = set()
        for line in listed.stdout.splitlines()[1:]:
            fields = line.split("\t")
            if len(fields) >= 3 and fields[0].isdigit() and fields[2] == client_id:
                ids.add(int(fields[0]))
        return ids


def grants(lines: list[str], grant_type: str, sub: str, client_id: str = "docker") -> list[str]:
    """Return the lines of tokens issued with ``grant_type`` to ``sub`` for ``client_id``."""
    return audit_grants(lines, grant_type, sub, client_id)


def start_registry(name: str, site_netns: NetNamespace | None, config_path: Path,
                   workdir: Path) -> Service:
    """Start docker-registry with ``config_path`` (inside the namespace if there is one)."""
    binary = shutil.which("docker-registry")
    assert binary is not None
    argv = [binary, "serve", str(config_path)]
    if site_netns is not None:
        argv = site_netns.argv(argv)
    # A clean environment: docker-registry applies REGISTRY_* variables as overrides.
    return start_service(name, argv, {}, workdir / f"{name}.log", workdir)


def _netns_stack(stack: contextlib.ExitStack, workdir: Path
                 ) -> tuple[NetNamespace, AuthsvcInstance, Service, dict[str, Credentials]]:
    """Run authsvc and docker-registry inside a new network namespace; stop both on exit."""
    ns = stack.enter_context(network_namespace())
    url = f"https://{ns.address}:{NS_AUTHSVC_PORT}"
    cli = AuthsvcCli(_authsvc_executable(), _authsvc_env(workdir, url), workdir)
    cli.ok("certs", "init", "--host", ns.address, "--host", "127.0.0.1", "--host", "localhost")
    admin = Credentials("admin", new_password())
    cli.ok("init", "--admin", admin.username, "--admin-password-stdin",
           stdin=admin.password + "\n")
    argv = ns.argv([cli.executable, "serve", "--host", ns.address,
                    "--port", str(NS_AUTHSVC_PORT)])
    service = start_service("authsvc serve (netns)", argv, cli.env, workdir / "authsvc.log",
                            workdir)
    stack.callback(service.stop)
    authsvc = AuthsvcInstance(url, workdir / "certs", admin, cli, service)
    wait_for(service, lambda: https_status(ns.address, NS_AUTHSVC_PORT, "/",
                                           authsvc.ca_file) is not None,
             "answering HTTPS", STARTUP_TIMEOUT)
    address = f"{ns.address}:{NS_REGISTRY_PORT}"
    printed = cli.ok("registry-config", "--registry-addr", address,
                     "--storage-dir", str(workdir / "storage"))
    config_path = workdir / "registry.yml"
    config_path.write_text(printed.stdout)
    registry = start_registry("docker-registry (netns)", ns, config_path, workdir)
    stack.callback(registry.stop)
    wait_for(registry, lambda: https_status(ns.address, NS_REGISTRY_PORT, "/v2/",
                                            authsvc.ca_file) == 401,
             "answering /v2/ with 401", STARTUP_TIMEOUT)
    users = {name: Credentials(name, new_password()) for name in ("alice", "bob")}
    for creds in users.values():
        cli.add_user(creds)
    return ns, authsvc, registry, users


@pytest.fixture(scope="module")
def docker_engine() -> Iterator[DockerEngine]:
    """Run a private dockerd for this module; stop it and remove its folders afterwards."""
    with DockerEngine.running() as engine:
        yield engine


@pytest.fixture(scope="module")
def certs_d() -> Iterator[CertsDir]:
    """Trust entries in /etc/docker/certs.d, all removed at the end of the module."""
    trust = CertsDir()
    try:
        yield trust
    finally:
        trust.cleanup()


@pytest.fixture(scope="module", params=["loopback", "netns"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         docker_engine: DockerEngine, certs_d: CertsDir) -> Iterator[Site]:
    """authsvc and docker-registry on loopback (conftest) or in a namespace, trusted by dockerd."""
    kind: str = request.param
    workdir = tmp_path_factory.mktemp(f"docker-{kind}")
    with contextlib.ExitStack() as stack:
        netns: NetNamespace | None = None
        if kind == "loopback":
            authsvc: AuthsvcInstance = request.getfixturevalue("authsvc")
            registry = request.getfixturevalue("registry")
            users: dict[str, Credentials] = request.getfixturevalue("users")
            address, registry_service = registry.address, registry.service
        else:
            netns, authsvc, registry_service, users = _netns_stack(stack, workdir)
            address = f"{netns.address}:{NS_REGISTRY_PORT}"
        certs_d.trust(address, authsvc.ca_file)
        stack.callback(certs_d.distrust, address)
        tarball = rootfs_tarball(workdir, "index.html",
                                 f"It works! authsvc e2e, {kind}.\n".encode())
        base_image = f"authsvc-e2e/base-{kind}:latest"
        docker_engine.client("importer").ok("import", str(tarball), base_image)
        yield Site(kind, address, authsvc, registry_service, users, docker_engine, certs_d,
                   base_image, netns, workdir)


@dataclass(frozen=True)
class AlicePush:
    """alice logged in with ``docker login`` and pushed alice/httpd with every tutorial tag."""

    docker: DockerClient
    login: Result
    login_issued: list[str]
    stored: dict[str, str] | None
    pushes: list[Result]
    push_issued: list[str]
    image_id: str


@pytest.fixture(scope="module")
def alice_push(site: Site) -> AlicePush:
    """Have alice log in, tag the imported image as alice/httpd:{v1,1,1.9,latest} and push."""
    alice = site.users["alice"]
    docker = site.client("alice")
    mark = site.log_mark()
    login = site.ok(docker.login(site.address, alice))
    login_issued = site.issued_since(mark)
    stored = docker.stored_auth(site.address)
    image_id = docker.image_id(site.base_image)
    assert image_id is not None
    for tag in HTTPD_TAGS:
        docker.ok("tag", site.base_image, site.ref("alice/httpd", tag))
    mark = site.log_mark()
    pushes = [site.ok(docker.run("push", site.ref("alice/httpd", tag))) for tag in HTTPD_TAGS]
    return AlicePush(docker, login, login_issued, stored, pushes, site.issued_since(mark),
                     image_id)


def test_docker_login_stores_an_identity_token_not_the_password(
        site: Site, alice_push: AlicePush) -> None:
    """``docker login`` gets a refresh token; config.json keeps it instead of the password."""
    password = site.users["alice"].password
    assert "Login Succeeded" in alice_push.login.stdout, alice_push.login.describe()
    logins = grants(alice_push.login_issued, "basic", "alice")
    assert logins, f"no basic grant for alice's login in:\n{alice_push.login_issued}"
    assert all(not event(line).get("requested") for line in logins), logins

    stored = alice_push.stored
    assert stored is not None, f"no entry for {site.address}: {alice_push.docker.config()}"
    assert stored.get("identitytoken"), f"no identitytoken stored: {stored.keys()}"
    assert "password" not in stored
    assert password not in decode_auth(stored)
    assert decode_auth(stored) in ("", "alice:"), "auth holds more than the user name"
    config_text = (alice_push.docker.config_dir / "config.json").read_text()
    assert password not in config_text
    config = alice_push.docker.config()
    assert not config.get("credsStore") and not config.get("credHelpers"), config

    ids = site.refresh_token_ids("alice")
    assert ids, "authsvc lists no refresh token of alice for client_id docker"


def test_docker_push_redeems_the_identity_token(site: Site, alice_push: AlicePush) -> None:
    """Every push gets its token by ``POST /token`` with the refresh token, never the password."""
    for push in alice_push.pushes:
        assert re.search(r"digest: sha256:[0-9a-f]{64}", push.stdout), push.describe()
    issued = alice_push.push_issued
    refreshed = grants(issued, "refresh_token", "alice")
    assert len(refreshed) >= len(HTTPD_TAGS), "\n".join(issued)
    for line in refreshed:  # docker asks for push,pull; the log prints actions sorted
        assert scope_actions(line, "requested", "alice/httpd") == {"pull", "push"}, line
        assert scope_actions(line, "granted", "alice/httpd") == {"pull", "push"}, line
    others = [line for line in issued if line not in refreshed]
    assert not others, "the push used other grants than the refresh token:\n" + "\n".join(others)
    if site.netns is not None:  # the requests came through the veth pair, from the host end
        assert all(event(line)["remote_addr"] == site.netns.host_address
                   for line in refreshed), refreshed


def test_docker_pull_after_rmi_gives_the_same_image(site: Site, alice_push: AlicePush) -> None:
    """After every local name is gone, ``docker pull …/alice/httpd:v1`` brings the image back."""
    docker = alice_push.docker
    v1 = site.ref("alice/httpd", "v1")
    refs = docker.refs_of(alice_push.image_id)
    assert v1 in refs, refs
    docker.ok("rmi", *refs)
    assert docker.image_id(v1) is None
    mark = site.log_mark()
    pulled = site.ok(docker.run("pull", v1))
    try:
        assert "Downloaded newer image" in pulled.stdout, pulled.describe()
        assert docker.image_id(v1) == alice_push.image_id
        issued = site.issued_since(mark)
        refreshed = grants(issued, "refresh_token", "alice")
        assert any(scope_actions(line, "requested", "alice/httpd") == {"pull"}
                   for line in refreshed), issued
        assert not grants(issued, "basic", "alice"), issued
    finally:  # give the other tests their local names back
        for ref in [site.base_image, *(site.ref("alice/httpd", tag) for tag in HTTPD_TAGS)]:
            docker.run("tag", v1, ref)


def test_docker_logout_forgets_the_identity_token(site: Site) -> None:
    """``docker logout`` removes the stored entry from config.json."""
    docker = site.client("alice-logout")
    site.ok(docker.login(site.address, site.users["alice"]))
    assert docker.stored_auth(site.address) is not None
    logout = site.ok(docker.logout(site.address))
    assert "Removing login credentials" in logout.stdout, logout.describe()
    assert docker.stored_auth(site.address) is None, docker.config()


def test_bob_may_not_push_to_alice(site: Site, alice_push: AlicePush) -> None:
    """bob, logged in with his own DOCKER_CONFIG, is denied pushing into alice/httpd."""
    bob = site.client("bob")
    site.ok(bob.login(site.address, site.users["bob"]))
    target = site.ref("alice/httpd", "bob")
    bob.ok("tag", site.base_image, target)
    try:
        mark = site.log_mark()
        site.fails(bob.run("push", target), PUSH_DENIED)
        refreshed = grants(site.issued_since(mark), "refresh_token", "bob")
        assert refreshed, site.issued_since(mark)
        assert all("push" not in scope_actions(line, "granted", "alice/httpd")
                   for line in refreshed), refreshed
    finally:
        bob.run("rmi", target)
    bob.ok("logout", site.address)


def test_anonymous_pull_needs_a_public_repository(site: Site, alice_push: AlicePush) -> None:
    """Anonymous (empty DOCKER_CONFIG) may not pull private alice/httpd, but may once public."""
    anonymous = site.client("anonymous")
    assert anonymous.stored_auth(site.address) is None
    ref = site.ref("alice/httpd", "v1")
    mark = site.log_mark()
    site.fails(anonymous.run("pull", ref), PULL_DENIED)
    assert grants(site.issued_since(mark), "anonymous", "-", "-"), site.issued_since(mark)
    site.authsvc.cli.ok("repo", "visibility", "alice/httpd", "public")
    try:
        anonymous.ok("rmi", ref)  # untag, so the pull has to resolve the tag again
        pulled = site.ok(anonymous.run("pull", ref))
        assert ref in pulled.stdout, pulled.describe()
        assert anonymous.image_id(ref) == alice_push.image_id
    finally:
        site.authsvc.cli.ok("repo", "visibility", "alice/httpd", "private")
        anonymous.run("tag", site.base_image, ref)
    site.fails(anonymous.run("pull", ref), PULL_DENIED)


def test_revoked_identity_token_is_refused_until_login(site: Site,
                                                       alice_push: AlicePush) -> None:
    """A revoked refresh token ends a docker login: pull and push fail until she logs in."""
    alice = site.users["alice"]
    docker = site.client("alice-revoke")
    before = site.refresh_token_ids("alice")
    site.ok(docker.login(site.address, alice))
    new_ids = site.refresh_token_ids("alice") - before
    assert len(new_ids) == 1, f"expected one new refresh token, got {new_ids}"
    (token_id,) = new_ids
    ref = site.ref("alice/httpd", "v1")
    site.ok(docker.run("pull", ref))

    site.authsvc.cli.ok("refresh-token", "revoke", str(token_id))
    assert token_id not in site.refresh_token_ids("alice")
    mark = site.log_mark()
    site.fails(docker.run("pull", ref), UNAUTHORIZED)
    site.fails(docker.run("push", ref), UNAUTHORIZED)
    assert not grants(site.issued_since(mark), "refresh_token", "alice"), site.issued_since(mark)
    refused = [line for line in site.log_since(mark) if '"POST /token HTTP/1.1" 401' in line]
    assert len(refused) >= 2, "\n".join(site.log_since(mark))  # authsvc said no, not the registry
    assert docker.stored_auth(site.address) is not None  # the dead token is still stored

    site.ok(docker.login(site.address, alice))
    mark = site.log_mark()
    site.ok(docker.run("pull", ref))
    assert grants(site.issued_since(mark), "refresh_token", "alice"), site.issued_since(mark)


def test_tls_is_verified(site: Site) -> None:
    """Without the CA in certs.d dockerd refuses the namespace registry; on loopback it does not.

    dockerd treats 127.0.0.0/8 as an insecure registry and verifies nothing
    there, which is why the namespace run exists.
    """
    docker = site.client("untrusting")
    ref = site.ref("alice/httpd", "v1")
    with site.certs_d.without(site.address):
        mark = site.log_mark()
        pull = docker.run("pull", ref)  # anonymous: nothing stored in this DOCKER_CONFIG yet
        login = docker.login(site.address, site.users["alice"])
        if site.verifies_tls:
            site.fails(pull, UNTRUSTED)
            site.fails(login, UNTRUSTED)
            assert not site.issued_since(mark), "authsvc was reached without trust"
        else:
            site.fails(pull, PULL_DENIED)  # TLS passed unchecked; the token had no pull
            site.ok(login)
            docker.ok("logout", site.address)
    site.ok(docker.login(site.address, site.users["alice"]))
    site.ok(docker.run("pull", ref))
    docker.ok("logout", site.address)


def test_realm_certificate_is_verified(site: Site, tmp_path: Path) -> None:
    """A registry dockerd trusts, whose realm (authsvc) has a certificate from another CA.

    The second registry's certificate comes from a second, unrelated CA, and
    only that CA is in its certs.d entry. Off loopback, ``docker login`` then
    fails on the realm's certificate: dockerd checks authsvc's TLS, not only the
    registry's.
    """
    other = AuthsvcCli(_authsvc_executable(), _authsvc_env(tmp_path / "other-ca", site.authsvc.url),
                       tmp_path)
    other.ok("certs", "init", "--host", site.host, "--host", "127.0.0.1", "--host", "localhost")
    other_certs = tmp_path / "other-ca" / "certs"
    port = NS_REGISTRY_PORT + 2 if site.netns is not None else free_port()
    address = f"{site.host}:{port}"
    printed = site.authsvc.cli.ok("registry-config", "--registry-addr", address,
                                  "--storage-dir", str(tmp_path / "storage"))
    config = yaml.safe_load(printed.stdout)
    tls = config["http"]["tls"]
    tls["certificate"] = str(other_certs / Path(tls["certificate"]).name)
    tls["key"] = str(other_certs / Path(tls["key"]).name)
    config_path = tmp_path / "registry.yml"
    config_path.write_text(yaml.safe_dump(config))
    registry = start_registry("docker-registry (other CA)", site.netns, config_path, tmp_path)
    try:
        wait_for(registry, lambda: https_status(site.host, port, "/v2/",
                                                other_certs / "ca.pem") == 401,
                 "answering /v2/ with 401", STARTUP_TIMEOUT)
        site.certs_d.trust(address, other_certs / "ca.pem")
        docker = site.client("other-ca")
        mark = site.log_mark()
        login = docker.login(address, site.users["alice"])
        if site.verifies_tls:
            site.fails(login, UNTRUSTED)
            realm = f"{site.authsvc.url}/token"
            assert realm in login.output, f"the failure is not the realm's\n{login.describe()}"
            assert not site.issued_since(mark), "a token was issued over an untrusted connection"
        else:
            site.ok(login)
            docker.ok("logout", address)
    finally:
        site.certs_d.distrust(address)
        registry.stop()

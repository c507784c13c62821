"""``docker search`` and ``podman search`` through real nginx in front of the registry.

nginx runs the server block ``authsvc proxy-config`` prints (wrapped in a minimal nginx.conf)
on a loopback port of its own: ``/v1/`` and ``/v2/_catalog`` go to authsvc, the rest of
``/v2/`` to a docker-registry that posts its notifications to authsvc (the catalog fixtures),
so authsvc knows which repositories hold tags. Through it, the Debian Docker engine (20.10)
logs in, pushes and pulls, and ``docker search HOST:PORT/alice`` shows exactly what the caller
may pull, whichever way the credentials are stored: an identity token (``docker login``: the
daemon runs the token flow for ``registry:catalog:search`` and sends a Bearer JWT), a password
(config.json ``auth``, sent as Basic) or nothing (``Basic Og==``). podman 4.3 (containers/image
5.23) sends ``/v1/search`` with no credentials at all, which authsvc answers 401; podman then
gets a ``registry:catalog:*`` token from the realm with what its auth file holds and lists
``/v2/_catalog``, which authsvc answers with what that caller may pull. podman has no
``--cert-dir`` for search and trusts nginx through the ``/etc/docker/certs.d`` entry the
Docker engine uses too.

alice owns alice/private1 (private) and alice/public1 (public); bob owns bob/tool (private).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .audit_log import event, grants, token_lines
from .catalog_fixtures import (  # noqa: F401 - the fixtures authsvc and registry
    CatalogAuthsvc,
    catalog_authsvc,
    catalog_registry,
    eventually,
)
from .clients import Credentials, Podman, Result
from .docker_engine import CertsDir, DockerClient, DockerEngine, rootfs_tarball
from .processes import (
    LOOPBACK,
    Service,
    free_port,
    https_headers,
    https_request,
    https_status,
    settle_log,
    start_service,
    wait_for,
)
from .world import Registry

pytestmark = pytest.mark.e2e

NGINX = "/usr/sbin/nginx"
STARTUP_TIMEOUT = 30.0
ALICE_REPOS = ("alice/private1", "alice/public1")
BOB_REPO = "bob/tool"
#: What each caller may pull of the pushed repositories (None: anonymous).
MAY_PULL: dict[str | None, list[str]] = {"alice": list(ALICE_REPOS),
                                         "bob": ["alice/public1", BOB_REPO],
                                         None: ["alice/public1"]}


def _nginx_conf(server_block: str, root: Path) -> Path:
    """A minimal nginx.conf around ``server_block``: pid, logs and temporary files in
    ``root``; workers as root when nginx starts as root (``root`` is the test's private
    folder, which no other user may enter)."""
    temp = "\n".join(f"    {kind}_temp_path {root / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = root / "nginx.conf"
    conf.write_text(f"{user}pid {root / 'nginx.pid'};\nerror_log {root / 'error.log'} info;\n"
                    f"worker_processes 1;\nevents {{}}\nhttp {{\n"
                    f"    access_log {root / 'access.log'};\n{temp}\n{server_block}}}\n")
    return conf


@dataclass(frozen=True)
class Front:
    """nginx in front of the registry, and everything the tests drive through it."""

    address: str  # 127.0.0.1:PORT, the address clients use for the registry
    port: int
    nginx: Service
    authsvc: CatalogAuthsvc
    engine: DockerEngine
    users: dict[str, Credentials]

    def ref(self, repo: str, tag: str = "v1") -> str:
        """Return ``HOST:PORT/REPO:TAG`` through nginx."""
        return f"{self.address}/{repo}:{tag}"

    def diagnostics(self) -> str:
        """Return the ends of the nginx, authsvc and dockerd logs."""
        error_log = self.nginx.log_path.parent / "error.log"
        errors = error_log.read_text(errors="replace")[-3000:] if error_log.exists() else ""
        return (f"--- nginx error log ---\n{errors}\n"
                f"--- authsvc log ---\n{self.authsvc.service.log_tail(4000)}\n"
                f"--- dockerd log ---\n{self.engine.log_tail(2000)}")

    def ok(self, result: Result) -> Result:
        """Assert that a command succeeded; show its output and the server logs if not."""
        assert result.returncode == 0, f"{result.describe()}\n{self.diagnostics()}"
        return result

    def log_mark(self) -> int:
        """The current size of the authsvc log, to read what is logged after it."""
        settle_log()
        return self.authsvc.service.log_path.stat().st_size

    def issued_since(self, mark: int) -> list[str]:
        """The audit lines of tokens authsvc issued after ``mark``."""
        settle_log()
        with self.authsvc.service.log_path.open("rb") as log:
            log.seek(mark)
            return token_lines(log.read().decode(errors="replace").splitlines())

    def access_lines(self) -> list[str]:
        """nginx's access log: one line per request (method, path, status, user agent)."""
        settle_log()
        return (self.nginx.log_path.parent / "access.log").read_text(
            errors="replace").splitlines()

    def names(self, listed: str) -> list[str]:
        """Repository names out of one name per line, with any ``HOST:PORT/`` taken off."""
        prefix = f"{self.address}/"
        return sorted(line.strip().removeprefix(prefix) for line in listed.splitlines()
                      if line.strip())

    def docker_search(self, client: DockerClient, term: str = "alice") -> list[str]:
        """What ``docker search HOST:PORT/TERM`` lists for ``client``'s stored credentials."""
        found = self.ok(client.run("search", "--no-trunc", "--format", "{{.Name}}",
                                   f"{self.address}/{term}"))
        return self.names(found.stdout)


@pytest.fixture(scope="module")
def nginx_front(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                authsvc: CatalogAuthsvc, registry: Registry) -> Iterator[tuple[str, Service]]:
    """Run nginx with the server block ``authsvc proxy-config`` prints; stop it by PID."""
    if not os.access(NGINX, os.X_OK):
        pytest.fail(f"{NGINX} is needed (Debian package nginx-light)", pytrace=False)
    root = tmp_path_factory.mktemp("nginx")
    port = free_port()
    printed = authsvc.cli.ok("proxy-config", "--listen", f"{LOOPBACK}:{port}",
                             "--registry-upstream", f"https://{registry.address}")
    conf = _nginx_conf(printed.stdout, root)
    argv = [NGINX, "-p", str(root), "-e", str(root / "error.log"), "-c", str(conf),
            "-g", "daemon off;"]
    service = start_service("nginx", argv, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                            root / "nginx.log", root)
    try:
        wait_for(service, lambda: https_status(LOOPBACK, port, "/v2/", authsvc.ca_file) == 401,
                 "answering /v2/ with the registry's 401", STARTUP_TIMEOUT)
        yield f"{LOOPBACK}:{port}", service
    finally:
        service.stop()


def _imported(engine: DockerEngine, root: Path, name: str) -> str:
    """A one-layer local image of its own content, made with ``docker import``."""
    tarball = rootfs_tarball(root / name, "index.html", f"authsvc search e2e: {name}\n".encode())
    image = f"authsvc-search-e2e/{name}:latest"
    engine.client("importer").ok("import", str(tarball), image)
    return image


@pytest.fixture(scope="module")
def front(nginx_front: tuple[str, Service], authsvc: CatalogAuthsvc,
          users: dict[str, Credentials],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """One Docker engine for the module; alice and bob log in through nginx and push."""
    address, nginx = nginx_front
    root = tmp_path_factory.mktemp("search-images")
    trust = CertsDir()
    with DockerEngine.running() as engine:
        try:
            trust.trust(address, authsvc.ca_file)
            site = Front(address, int(address.rsplit(":", 1)[1]), nginx, authsvc, engine, users)
            for owner, repos in (("alice", ALICE_REPOS), ("bob", (BOB_REPO,))):
                docker = engine.client(f"{owner}-token")
                site.ok(docker.login(address, users[owner]))
                image = _imported(engine, root, owner)
                for repo in repos:
                    docker.ok("tag", image, site.ref(repo))
                    site.ok(docker.run("push", site.ref(repo)))
            authsvc.cli.ok("repo", "visibility", "alice/public1", "public")
            for repo in (*ALICE_REPOS, BOB_REPO):  # the registry's notifications recorded
                eventually(lambda repo=repo: authsvc.tags(repo, authsvc.admin),
                           f"the tag of {repo} in authsvc's catalog")
            yield site
        finally:
            trust.cleanup()


def test_the_registry_answers_through_nginx_with_its_api_version_header(front: Front) -> None:
    headers = https_headers(LOOPBACK, front.port, "/v2/", front.authsvc.ca_file)
    assert headers.get("docker-distribution-api-version") == "registry/2.0", headers
    assert headers.get("www-authenticate", "").startswith("Bearer realm="), headers
    status, _, body = https_request(LOOPBACK, front.port, front.authsvc.ca_file, path="/other")
    assert status == 404 and json.loads(body)["errors"][0]["code"] == "NOT_FOUND"


def test_docker_login_push_and_pull_work_through_nginx(front: Front) -> None:
    """The pushes of the fixture worked; the identity token is what docker stored; bob and
    anonymous pull the public repository, not alice's private one."""
    stored = front.engine.client("alice-token").stored_auth(front.address)
    assert stored is not None and stored.get("identitytoken"), stored
    for who in ("bob-token", "anonymous-pull"):
        docker = front.engine.client(who)
        docker.run("rmi", front.ref("alice/public1"))  # untagged: the pull resolves it again
        pulled = front.ok(docker.run("pull", front.ref("alice/public1")))
        assert front.ref("alice/public1") in pulled.stdout, pulled.describe()
        refused = docker.run("pull", front.ref("alice/private1"))
        assert refused.returncode != 0 and "denied" in refused.output, refused.describe()


@pytest.mark.parametrize(("who", "expected"), [
    ("alice", list(ALICE_REPOS)),
    ("bob", ["alice/public1"]),
])
def test_docker_search_with_an_identity_token(front: Front, who: str,
                                              expected: list[str]) -> None:
    """The daemon gets a ``registry:catalog:search`` token with the identity token (the
    refresh grant) and searches with it as a Bearer token."""
    docker = front.engine.client(f"{who}-token")
    mark = front.log_mark()
    assert front.docker_search(docker) == expected
    searched = [line for line in grants(front.issued_since(mark), "refresh_token", who, "docker")
                if "registry:catalog:search" in event(line).get("granted", "")]
    assert searched, f"no catalog:search token for {who}\n{front.diagnostics()}"


@pytest.mark.parametrize(("who", "expected"), [
    ("alice", list(ALICE_REPOS)),
    ("bob", ["alice/public1"]),
])
def test_docker_search_with_a_stored_password(front: Front, who: str,
                                              expected: list[str]) -> None:
    creds = front.users[who]
    docker = front.engine.client(f"{who}-password")
    auth = base64.b64encode(creds.joined.encode()).decode()
    (docker.config_dir / "config.json").write_text(
        json.dumps({"auths": {front.address: {"auth": auth}}}))
    assert front.docker_search(docker) == expected


def test_docker_search_logged_out(front: Front) -> None:
    docker = front.engine.client("anonymous-search")
    assert docker.stored_auth(front.address) is None
    assert front.docker_search(docker) == ["alice/public1"]


@pytest.fixture(scope="module")
def podman_auth(front: Front, podman: Podman, tmp_path_factory: pytest.TempPathFactory,
                ) -> dict[str | None, Path]:
    """An auth file per user, written by ``podman login`` through nginx (user and password:
    podman keeps no identity token), and an empty one for anonymous searches."""
    root = tmp_path_factory.mktemp("podman-auth")
    files: dict[str | None, Path] = {None: root / "anonymous.json"}
    files[None].write_text(json.dumps({"auths": {}}))
    for who in ("alice", "bob"):
        files[who] = root / f"{who}.json"
        front.ok(podman.login(front.address, front.users[who], files[who]))
    return files


def podman_search(front: Front, podman: Podman, authfile: Path, term: str) -> list[str]:
    """What ``podman search HOST:PORT/TERM`` lists with the credentials in ``authfile``
    (``podman search`` has no ``--cert-dir``: it trusts nginx through the certs.d entry)."""
    found = front.ok(podman.run("search", "--tls-verify=true", "--authfile", str(authfile),
                                "--no-trunc", "--format", "{{.Name}}",
                                f"{front.address}/{term}"))
    return front.names(found.stdout)


def catalog_tokens(front: Front, mark: int, who: str | None) -> list[str]:
    """The tokens for ``registry:catalog:*`` authsvc issued ``who`` (None: anonymous) after
    ``mark``: podman's, for ``/v2/_catalog``."""
    grant_type = "basic" if who else "anonymous"
    return [line for line in grants(front.issued_since(mark), grant_type, who or "-", "-")
            if "registry:catalog:*" in event(line).get("requested", "")]


@pytest.mark.parametrize("who", ["alice", "bob", None])
def test_podman_search_lists_what_its_caller_may_pull(
        front: Front, podman: Podman, podman_auth: dict[str | None, Path], who: str | None,
) -> None:
    """``/v1/search`` without credentials is 401; podman sends ``/v2/_catalog`` with a token
    for no scope, gets the registry's challenge for ``registry:catalog:*`` (authsvc's: the
    scope in it is what podman asks for next), gets that token with its stored credentials and
    lists the catalog, filtering the names itself: ``/`` is in every name, ``alice`` in
    alice's."""
    mark, requests = front.log_mark(), len(front.access_lines())
    assert podman_search(front, podman, podman_auth[who], "/") == MAY_PULL[who]
    assert podman_search(front, podman, podman_auth[who], "alice") == [
        name for name in MAY_PULL[who] if "alice" in name]
    assert catalog_tokens(front, mark, who), f"no catalog token for {who}\n{front.diagnostics()}"
    searched = [line.split('"')[1:3] for line in front.access_lines()[requests:]
                if "/search?" in line or "/_catalog" in line]
    assert [(request.split()[1].split("?")[0], status.split()[0])
            for request, status in searched] == [
        ("/v1/search", "401"), ("/v2/_catalog", "401"), ("/v2/_catalog", "200")] * 2, searched


def test_the_registrys_catalog_stays_behind_nginx(front: Front) -> None:
    """nginx sends ``/v2/_catalog`` to authsvc: the registry's challenge, from authsvc."""
    headers = https_headers(LOOPBACK, front.port, "/v2/_catalog?n=10", front.authsvc.ca_file)
    assert headers.get("www-authenticate", "").endswith(
        ',service="registry",scope="registry:catalog:*"'), headers
    assert headers.get("docker-distribution-api-version") == "registry/2.0", headers
    assert "strict-transport-security" in headers, headers  # authsvc's, not the registry's


def test_bob_never_finds_alices_private_repository(
        front: Front, podman: Podman, podman_auth: dict[str | None, Path]) -> None:
    """Whatever bob searches for, by name or by owner, with docker (identity token, or the
    password stored by the test above) or podman, alice/private1 is not in it; his own
    bob/tool is, where his credentials are sent."""
    docker = front.engine.client("bob-token")
    assert front.docker_search(docker, "bob") == [BOB_REPO]
    for term in ("alice/private1", "private", "alice/p"):
        assert "alice/private1" not in front.docker_search(docker, term)
        assert "alice/private1" not in podman_search(front, podman, podman_auth["bob"], term)

"""`authsvc backup` while a real `authsvc serve` (2 workers) takes writes, then `authsvc
restore` into a new folder: the copy is sound and holds every write acknowledged before the
backup began, and the restored site serves tokens that a real docker-registry, configured with
the restored certificate bundle, accepts for skopeo's push and pull."""

from __future__ import annotations

import shutil
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from .clients import Credentials, Skopeo, expect_success
from .conftest import _tracked
from .processes import free_port, https_request, https_status, site_environment, start_service
from .processes import wait_for as wait_for_service
from .servers import ADMIN, Replica, Site, make_site, replica
from .world import ImageFactory

pytestmark = pytest.mark.e2e
PASSWORD = "writer-password-1"
WRITERS = 3
KEYS = ("ca-key.pem", "authsvc-key.pem", "registry-key.pem", "token-signing-key.pem",
        "web-secret-key", "notification-secret.json")


@dataclass(frozen=True)
class Write:
    """One user created through the admin API: when the request went out, when 201 came."""

    name: str
    sent: float
    acknowledged: float


class Writers:
    """Threads creating users through the admin API until stopped; every 201 is recorded."""

    def __init__(self, server: Replica) -> None:
        self.server = server
        self.done: list[Write] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.write, args=(f"w{n}",))
                        for n in range(WRITERS)]

    def write(self, prefix: str) -> None:
        session = self.server.session()
        for i in range(100000):
            if self.stop.is_set():
                return
            name, sent = f"{prefix}-{i}", time.monotonic()
            try:
                response = session.post(f"{self.server.url}/api/v1/users", auth=ADMIN,
                                        json={"username": name, "password": PASSWORD},
                                        timeout=20)
            except requests.RequestException as e:
                self.failures.append(f"{name}: {e}")
                return
            if response.status_code != 201:
                self.failures.append(f"{name}: {response.status_code} {response.text}")
                return
            self.done.append(Write(name, sent, time.monotonic()))

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.done) < count and not self.failures and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.done) >= count, (len(self.done), self.failures)

    @contextmanager
    def running(self) -> Iterator[Writers]:
        for thread in self.threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in self.threads:
                thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in self.threads), "a writer hung"
        assert not self.failures, self.failures


def rows(database: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True) as connection:
        found = connection.execute(query).fetchall()
    connection.close()
    return found


@contextmanager
def registry_for(request: pytest.FixtureRequest, site: Site) -> Iterator[str]:
    """docker-registry configured by the site's `authsvc registry-config` (its realm, and the
    site's certificate bundle and HTTPS certificate), on a loopback port; yields host:port."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    config = site.root / "registry.yml"
    config.write_text(site.cli("registry-config", "--registry-addr", address, "--storage-dir",
                               str(site.root / "storage"), "--no-notifications"))
    binary = shutil.which("docker-registry")
    assert binary is not None
    service = start_service("docker-registry", [binary, "serve", str(config)], {},
                            site.root / "registry.log", site.root)
    with _tracked(request.config, service):
        wait_for_service(service, lambda: https_status("127.0.0.1", port, "/v2/", site.ca) == 401,
                         "answering /v2/ with 401", 30)
        yield address


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_backup_during_writes_restores_a_site_the_registry_trusts(
        request: pytest.FixtureRequest, tmp_path: Path, client_env: Mapping[str, str],
        make_image: ImageFactory) -> None:
    source = make_site(tmp_path / "source", LOCKOUT_ATTEMPTS="0", LOCKOUT_ADDRESS_ATTEMPTS="0")
    archive = tmp_path / "backup.tar.gz"
    with replica(source, "source", workers=2) as server, Writers(server).running() as writers:
        writers.wait_for(30)
        backup_began = time.monotonic()
        saved = source.cli("backup", str(archive))
        backup_ended = time.monotonic()
        writers.wait_for(len(writers.done) + 30)
    assert mode(archive) == 0o600
    assert "integrity ok" in saved and "certs/token-signing-key.pem" in saved, saved
    before = {w.name for w in writers.done if w.acknowledged < backup_began}
    after = {w.name for w in writers.done if w.sent > backup_ended}
    assert len(before) >= 30 and len(after) >= 3 * WRITERS

    port = free_port()
    settings = {"PUBLIC_URL": f"https://127.0.0.1:{port}"}
    restored = Site(tmp_path / "restored",
                    site_environment(tmp_path / "restored", source.env, settings))
    restored.root.mkdir()
    printed = restored.cli("restore", str(archive))
    assert "integrity ok" in printed, printed
    database = restored.root / "instance" / "authsvc.db"
    assert rows(database, "PRAGMA integrity_check") == [("ok",)]
    users = {str(name) for (name,) in rows(database, "SELECT username FROM users")}
    assert before <= users, sorted(before - users)
    assert not after & users, sorted(after & users)  # written after the copy: not in it
    created = {str(t) for (t,) in rows(database, "SELECT target FROM audit_events "
                                                 "WHERE action = 'user.created'")}
    assert created == users  # each user with its audit event: one moment's copy
    certs = restored.root / "certs"
    assert {name: mode(certs / name) for name in KEYS} == {name: 0o600 for name in KEYS}
    for name in ("token-signing-key.pem", "rootcertbundle.pem", "web-secret-key"):
        assert (certs / name).read_bytes() == (source.root / "certs" / name).read_bytes()

    writer = Credentials(min(before), PASSWORD)
    cert_dir = tmp_path / "client-certs"
    cert_dir.mkdir()
    shutil.copyfile(restored.ca, cert_dir / "ca.crt")
    skopeo = Skopeo(client_env, cert_dir)
    with replica(restored, "restored", workers=1, port=port) as server, \
            registry_for(request, restored) as registry:
        image = make_image(f"{writer.username}/app")
        expect_success(skopeo.push(image, f"{registry}/{writer.username}/app:v1", writer))
        assert skopeo.tags(f"{registry}/{writer.username}/app", writer) == {"v1"}
        token = server.session().get(f"{server.url}/token", auth=(writer.username, PASSWORD),
                                     params={"service": "registry", "scope":
                                             f"repository:{writer.username}/app:pull"})
        assert token.status_code == 200, token.text
        host, _, registry_port = registry.partition(":")
        status, _, body = https_request(host, int(registry_port), restored.ca, path=f"/v2/"
                                        f"{writer.username}/app/tags/list", headers={
                                            "Authorization": f"Bearer {token.json()['token']}"})
        assert status == 200, body


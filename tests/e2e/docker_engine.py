"""A private Docker engine (Debian's ``dockerd`` 20.10) for the end-to-end tests.

The engine runs as root on a unix socket of its own, with its own data root,
exec root, pid file and an empty ``daemon.json``, so it never touches the
machine's ``/var/lib/docker`` or ``/run/docker.sock``. It makes no bridge and
no iptables rules, and uses the ``vfs`` storage driver (no overlay mounts).
dockerd starts a managed ``containerd`` under its exec root; stopping the
engine makes sure that child is gone too, by its PID.

Clients run ``/usr/bin/docker`` (the Debian client, not ``/usr/local/bin/docker``)
with a private ``DOCKER_CONFIG`` folder per identity, so ``config.json`` shows
exactly what ``docker login`` stored. Trust in a registry's CA goes to
``/etc/docker/certs.d/HOST:PORT/ca.crt`` (dockerd reads it per request);
:class:`CertsDir` removes what it wrote.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .clients import Credentials, Result, expect_success, run
from .processes import Service, start_service

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"
# A PATH without /usr/local: the Debian client, containerd, runc and docker-init only.
ENGINE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# The credential stores the docker CLI picks by itself when it finds their helper on PATH.
DEFAULT_CREDENTIAL_HELPERS = ("docker-credential-pass", "docker-credential-secretservice")
CERTS_D = Path("/etc/docker/certs.d")
RUN_DOCKER = Path("/run/docker")  # dockerd creates /run/docker/plugins whatever its exec root
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


def _pid_alive(pid: int) -> bool:
    """Return whether a process ``pid`` exists (and is not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    """Return the command line of ``pid`` with spaces for NULs, or '' if it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _kill_pid(pid: int, marker: str, timeout: float) -> None:
    """SIGTERM ``pid``, then SIGKILL after ``timeout``; only while its command line has ``marker``.

    The marker (a path of this engine) guards against a recycled PID.
    """
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if not _pid_alive(pid) or marker not in _cmdline(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.1)


def _mounts_under(root: Path) -> list[str]:
    """Return the mount points at or below ``root``, deepest first."""
    prefix = str(root)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(set(points), key=len, reverse=True)


def unmount_all_under(root: Path) -> None:
    """Unmount everything mounted at or below ``root`` (lazily if a plain umount fails)."""
    for point in _mounts_under(root):
        done = subprocess.run(["umount", point], capture_output=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def rootfs_tarball(folder: Path, file_name: str, content: bytes) -> Path:
    """Make ``folder/rootfs`` holding one file and tar it as ``folder/rootfs.tar``.

    The tarball is what ``docker import`` turns into a one-layer image.
    """
    rootfs = folder / "rootfs"
    rootfs.mkdir(parents=True, exist_ok=True)
    (rootfs / file_name).write_bytes(content)
    tarball = folder / "rootfs.tar"
    with tarfile.open(tarball, mode="w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    return tarball


@dataclass(frozen=True)
class DockerClient:
    """``/usr/bin/docker`` talking to one engine, with a private ``DOCKER_CONFIG`` folder."""

    host: str
    config_dir: Path

    @property
    def env(self) -> dict[str, str]:
        """Return the whole environment of a client run (no proxies, no credential helper)."""
        return {
            "PATH": ENGINE_PATH,
            "HOME": str(self.config_dir),
            "LANG": "C.UTF-8",
            "DOCKER_HOST": self.host,
            "DOCKER_CONFIG": str(self.config_dir),
        }

    def run(self, *args: str, stdin: str | None = None) -> Result:
        """Run ``docker ARGS``."""
        return run([DOCKER, *args], self.env, stdin=stdin)

    def ok(self, *args: str, stdin: str | None = None) -> Result:
        """Run ``docker ARGS`` and assert that it succeeded."""
        return expect_success(self.run(*args, stdin=stdin))

    def login(self, address: str, creds: Credentials) -> Result:
        """Run ``docker login -u USER --password-stdin ADDRESS``."""
        return self.run("login", "-u", creds.username, "--password-stdin", address,
                        stdin=creds.password + "\n")

    def logout(self, address: str) -> Result:
        """Run ``docker logout ADDRESS``."""
        return self.run("logout", address)

    def config(self) -> dict[str, object]:
        """Return ``config.json`` as the CLI wrote it ({} when there is none)."""
        path = self.config_dir / "config.json"
        if not path.exists():
            return {}
        loaded: dict[str, object] = json.loads(path.read_text())
        return loaded

    def stored_auth(self, address: str) -> dict[str, str] | None:
        """Return the ``auths`` entry ``config.json`` holds for ``address``, or None."""
        auths = self.config().get("auths") or {}
        assert isinstance(auths, dict)
        entry = auths.get(address)
        return dict(entry) if entry is not None else None

    def image_id(self, ref: str) -> str | None:
        """Return the local image id of ``ref``, or None if the engine does not have it."""
        result = self.run("image", "inspect", "--format", "{{.Id}}", ref)
        return result.stdout.strip() if result.returncode == 0 else None

    def refs_of(self, image_id: str) -> list[str]:
        """Return every ``REPO:TAG`` that names ``image_id`` in the engine."""
        result = self.ok("image", "ls", "--no-trunc", "--format",
                         "{{.ID}} {{.Repository}}:{{.Tag}}")
        refs = []
        for line in result.stdout.splitlines():
            found_id, _, ref = line.partition(" ")
            if found_id == image_id and not ref.endswith("<none>"):
                refs.append(ref)
        return refs


def decode_auth(entry: Mapping[str, str]) -> str:
    """Return the decoded ``auth`` field of a config.json entry ('' if absent)."""
    raw = entry.get("auth", "")
    return base64.b64decode(raw).decode(errors="replace") if raw else ""


class DockerEngine:
    """dockerd on a private unix socket under a short folder in /tmp; see the module text."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data_root = base / "data"
        self.exec_root = base / "exec"
        self.pidfile = base / "docker.pid"
        self.socket = base / "docker.sock"
        self.config_file = base / "daemon.json"
        self.log_path = base / "dockerd.log"
        self.clients_root = base / "clients"
        self.service: Service | None = None
        self.containerd_pid: int | None = None
        self._made_run_docker = not RUN_DOCKER.exists()

    @property
    def host(self) -> str:
        """Return the ``DOCKER_HOST`` value of this engine."""
        return f"unix://{self.socket}"

    @classmethod
    @contextlib.contextmanager
    def running(cls) -> Iterator[DockerEngine]:
        """Start an engine, yield it, and always stop it and remove its folders."""
        # Short: unix socket paths (the managed containerd's lives under exec root) max 108 bytes.
        engine = cls(Path(tempfile.mkdtemp(prefix="dk", dir="/tmp")))
        try:
            engine.start()
            yield engine
        finally:
            engine.stop()

    def start(self) -> None:
        """Start dockerd and wait until ``docker version`` answers for the server."""
        if not os.access(DOCKERD, os.X_OK) or not os.access(DOCKER, os.X_OK):
            raise RuntimeError(f"{DOCKERD} and {DOCKER} are needed (Debian package docker.io)")
        for helper in DEFAULT_CREDENTIAL_HELPERS:
            found = shutil.which(helper, path=ENGINE_PATH)
            if found:
                raise RuntimeError(f"{found} would become the docker CLI's credential store; "
                                   "config.json would not show what docker login stored")
        for folder in (self.data_root, self.exec_root, self.clients_root):
            folder.mkdir(parents=True)
        # Own key path: dockerd 20.10 would otherwise write /etc/docker/key.json.
        self.config_file.write_text(json.dumps(
            {"deprecated-key-path": str(self.base / "key.json")}))
        argv = [
            DOCKERD, "--iptables=false", "--ip6tables=false", "--bridge=none",
            "--storage-driver=vfs", "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root), "--pidfile", str(self.pidfile),
            "--host", self.host, "--config-file", str(self.config_file),
        ]
        env = {"PATH": ENGINE_PATH, "HOME": str(self.base), "LANG": "C.UTF-8"}
        self.service = start_service("dockerd", argv, env, self.log_path, self.base)
        probe = self.client("probe")
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if not self.service.is_running():
                raise RuntimeError(f"dockerd exited with status {self.service.process.returncode}"
                                   f"; log:\n{self.service.log_tail()}")
            result = probe.run("version", "--format", "{{.Server.Version}}")
            if result.returncode == 0 and result.stdout.strip():
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not answer in {START_TIMEOUT}s; "
                                   f"log:\n{self.service.log_tail()}")
            time.sleep(0.2)
        self.containerd_pid = self._read_containerd_pid()

    def _read_containerd_pid(self) -> int | None:
        """Return the PID of the containerd dockerd started under its exec root, if any."""
        pid_file = self.exec_root / "containerd" / "containerd.pid"
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int(pid_file.read_text().strip())
        return None

    def client(self, name: str) -> DockerClient:
        """Return a client with its own (possibly new, empty) ``DOCKER_CONFIG`` folder ``name``."""
        config_dir = self.clients_root / name
        config_dir.mkdir(parents=True, exist_ok=True)
        return DockerClient(self.host, config_dir)

    def log_tail(self, chars: int = 6000) -> str:
        """Return the end of the dockerd log."""
        return self.service.log_tail(chars) if self.service else ""

    def stop(self) -> None:
        """Stop dockerd and its containerd by PID, unmount leftovers, remove the folders."""
        containerd_pid = self.containerd_pid or self._read_containerd_pid()
        if self.service is not None:
            self.service.stop(timeout=STOP_TIMEOUT)
        if containerd_pid is not None:
            _kill_pid(containerd_pid, str(self.exec_root), STOP_TIMEOUT)
        unmount_all_under(self.base)
        shutil.rmtree(self.base, ignore_errors=True)
        if self.base.exists():  # vfs layers can hold read-only folders; rm -rf copes
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.base)], check=False)
        if self._made_run_docker:
            for folder in (RUN_DOCKER / "plugins", RUN_DOCKER):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if empty: never remove what someone else put there


class CertsDir:
    """Trust entries in ``/etc/docker/certs.d``; :meth:`cleanup` removes every one it made."""

    def __init__(self) -> None:
        self._made_root = not CERTS_D.exists()
        self._made: set[Path] = set()

    def trust(self, address: str, ca_file: Path) -> Path:
        """Make dockerd trust ``ca_file`` for the registry ``address`` (HOST:PORT)."""
        folder = CERTS_D / address
        if folder.exists() and folder not in self._made:
            raise RuntimeError(f"{folder} exists already and is not this test's")
        folder.mkdir(parents=True, exist_ok=True)
        self._made.add(folder)
        shutil.copyfile(ca_file, folder / "ca.crt")
        return folder

    def distrust(self, address: str) -> None:
        """Remove the trust entry for ``address`` that :meth:`trust` made."""
        folder = CERTS_D / address
        if folder in self._made:
            shutil.rmtree(folder, ignore_errors=True)
            self._made.discard(folder)

    @contextlib.contextmanager
    def without(self, address: str) -> Iterator[None]:
        """Remove the trust entry for ``address`` for a while, then restore the same CA."""
        folder = CERTS_D / address
        saved = (folder / "ca.crt").read_bytes() if folder in self._made else None
        self.distrust(address)
        try:
            yield
        finally:
            if saved is not None:
                folder.mkdir(parents=True, exist_ok=True)
                self._made.add(folder)
                (folder / "ca.crt").write_bytes(saved)

    def cleanup(self) -> None:
        """Remove every folder this object made, and certs.d itself if it made it."""
        for folder in list(self._made):
            self.distrust(folder.name)
        if self._made_root:
            with contextlib.suppress(OSError):
                CERTS_D.rmdir()

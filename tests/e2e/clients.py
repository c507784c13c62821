"""Thin wrappers around the command-line tools the end-to-end tests drive.

Every wrapper runs its tool with an explicit environment, so the machine's own
configuration (``~/.config/containers``, ``/run/containers/0/auth.json``,
``REGISTRY_*``/``AUTHSVC_*`` variables, proxies) never changes a result.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .oci_layout import OciImage

COMMAND_TIMEOUT = 120


@dataclass(frozen=True)
class Credentials:
    """A user name and password."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password='***')"

    @property
    def joined(self) -> str:
        """Return ``USER:PASSWORD`` as skopeo's ``--creds`` options expect."""
        return f"{self.username}:{self.password}"


# ``None`` stands for an anonymous client.
Identity = Credentials | None


@dataclass(frozen=True)
class Result:
    """The outcome of one command."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """Return stdout and stderr together."""
        return f"{self.stdout}\n{self.stderr}"

    def describe(self) -> str:
        """Return the command, its status and its output, for assertion messages."""
        return (
            f"$ {' '.join(self.argv)}\nexit status {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def run(
    argv: Sequence[str],
    env: Mapping[str, str],
    stdin: str | None = None,
    cwd: Path | None = None,
) -> Result:
    """Run ``argv`` to completion and return its status and output."""
    completed = subprocess.run(
        list(argv),
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        cwd=cwd,
        check=False,
    )
    return Result(tuple(argv), completed.returncode, completed.stdout, completed.stderr)


def expect_success(result: Result) -> Result:
    """Assert that the command exited with status 0 and return it."""
    assert result.returncode == 0, result.describe()
    return result


def expect_failure(result: Result, pattern: str) -> Result:
    """Assert a non-zero exit status and output matching ``pattern`` (case-insensitive)."""
    assert result.returncode != 0, f"expected a failure\n{result.describe()}"
    assert re.search(pattern, result.output, re.IGNORECASE), (
        f"output does not match {pattern!r}\n{result.describe()}"
    )
    return result


def redact(argv: Sequence[str], secrets: Sequence[str]) -> tuple[str, ...]:
    """Return ``argv`` with every secret replaced by ``***``."""
    redacted = []
    for arg in argv:
        for secret in secrets:
            arg = arg.replace(secret, "***")
        redacted.append(arg)
    return tuple(redacted)


@dataclass(frozen=True)
class AuthsvcCli:
    """The ``authsvc`` console script, run with the test instance's environment."""

    executable: str
    env: Mapping[str, str]
    cwd: Path

    def run(self, *args: str, stdin: str | None = None) -> Result:
        """Run ``authsvc ARGS`` and return the result."""
        return run([self.executable, *args], self.env, stdin=stdin, cwd=self.cwd)

    def ok(self, *args: str, stdin: str | None = None) -> Result:
        """Run ``authsvc ARGS`` and assert that it succeeded."""
        return expect_success(self.run(*args, stdin=stdin))

    def add_user(self, creds: Credentials, admin: bool = False) -> Result:
        """Create a user with ``authsvc user add NAME [--admin] --password-stdin``."""
        flags = ["--admin"] if admin else []
        return self.ok(
            "user", "add", creds.username, *flags, "--password-stdin", stdin=creds.password + "\n"
        )


def _creds_args(option: str, identity: Identity) -> list[str]:
    """Return skopeo options for ``identity``: ``--OPTION-creds U:P`` or ``--OPTION-no-creds``."""
    prefix = f"--{option}-" if option else "--"
    if identity is None:
        return [f"{prefix}no-creds"]
    return [f"{prefix}creds", identity.joined]


@dataclass(frozen=True)
class Skopeo:
    """skopeo, trusting only the CA certificates in ``cert_dir``."""

    env: Mapping[str, str]
    cert_dir: Path

    def _run(self, args: Sequence[str], identity: Identity) -> Result:
        result = run(["skopeo", *args], self.env)
        secrets = [identity.password] if identity else []
        return Result(redact(result.argv, secrets), result.returncode,
                      result.stdout, result.stderr)

    def push(self, image: OciImage, dest: str, identity: Identity) -> Result:
        """Copy the OCI layout ``image`` to ``docker://DEST``."""
        args = ["copy", "--dest-tls-verify=true", "--dest-cert-dir", str(self.cert_dir),
                *_creds_args("dest", identity), image.reference, f"docker://{dest}"]
        return self._run(args, identity)

    def pull(self, src: str, layout: Path, tag: str, identity: Identity) -> Result:
        """Copy ``docker://SRC`` into the OCI layout directory ``layout`` under ``tag``."""
        args = ["copy", "--src-tls-verify=true", "--src-cert-dir", str(self.cert_dir),
                *_creds_args("src", identity), f"docker://{src}", f"oci:{layout}:{tag}"]
        return self._run(args, identity)

    def _query(self, command: str, ref: str, identity: Identity) -> Result:
        args = [command, "--tls-verify=true", "--cert-dir", str(self.cert_dir),
                *_creds_args("", identity), f"docker://{ref}"]
        return self._run(args, identity)

    def inspect(self, ref: str, identity: Identity) -> Result:
        """Run ``skopeo inspect docker://REF``."""
        return self._query("inspect", ref, identity)

    def list_tags(self, repo: str, identity: Identity) -> Result:
        """Run ``skopeo list-tags docker://REPO``."""
        return self._query("list-tags", repo, identity)

    def delete(self, ref: str, identity: Identity) -> Result:
        """Run ``skopeo delete docker://REF``."""
        return self._query("delete", ref, identity)

    def digest(self, ref: str, identity: Identity) -> str:
        """Return the manifest digest ``skopeo inspect`` reports for ``ref``."""
        result = expect_success(self.inspect(ref, identity))
        return str(json.loads(result.stdout)["Digest"])

    def tags(self, repo: str, identity: Identity) -> set[str]:
        """Return the tags ``skopeo list-tags`` reports for ``repo``."""
        result = expect_success(self.list_tags(repo, identity))
        return set(json.loads(result.stdout)["Tags"])


@dataclass(frozen=True)
class Podman:
    """podman as root with private storage and configuration, trusting ``cert_dir``."""

    env: Mapping[str, str]
    cert_dir: Path

    def run(self, *args: str, stdin: str | None = None) -> Result:
        """Run ``podman ARGS``."""
        return run(["podman", *args], self.env, stdin=stdin)

    def login(self, address: str, creds: Credentials, authfile: Path) -> Result:
        """Run ``podman login`` with the password on stdin, storing into ``authfile``."""
        return self.run(
            "login", "--tls-verify=true", "--cert-dir", str(self.cert_dir),
            "--authfile", str(authfile), "--username", creds.username, "--password-stdin",
            address, stdin=creds.password + "\n",
        )

    def push(self, ref: str, authfile: Path) -> Result:
        """Run ``podman push REF`` with the credentials stored in ``authfile``."""
        return self.run("push", "--tls-verify=true", "--cert-dir", str(self.cert_dir),
                        "--authfile", str(authfile), ref)

    def pull(self, ref: str, authfile: Path) -> Result:
        """Run ``podman pull REF`` with the credentials stored in ``authfile``."""
        return self.run("pull", "--tls-verify=true", "--cert-dir", str(self.cert_dir),
                        "--authfile", str(authfile), ref)

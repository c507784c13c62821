"""podman and skopeo (containers/image) with a refresh token instead of a password.

containers/image never asks for a refresh token itself (``podman login``
stores the password), but it redeems one it finds in the auth file: an entry
with ``identitytoken`` makes it ``POST /token`` with ``grant_type=refresh_token``
and ``client_id=containers/image`` (PROTOCOL §1.4, ``docker_client.go``
``getBearerTokenOAuth2``). The test fetches the refresh token the way
``docker login`` does (``GET /token?offline_token=true``), writes the auth file
by hand, and checks what the authsvc log says each client did.

The entry must also hold ``auth``: containers/image's ``decodeDockerAuth``
(``pkg/docker/config/config.go``) splits the base64 ``auth`` at ``:`` and returns
an empty credential, dropping ``identitytoken`` too, when there is no ``:``.
So the entry is ``{"auth": base64("alice:"), "identitytoken": …}``, as docker
writes it; :func:`test_identity_token_without_auth_is_ignored` shows the other case.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from .audit_log import grants as audit_grants
from .audit_log import scope_actions, token_lines
from .clients import Credentials, Result, run
from .processes import settle_log
from .world import AuthsvcInstance, ImageFactory, Registry

pytestmark = pytest.mark.e2e

CLIENT_ID = "containers/image"
REPO = "alice/podman-refresh"
# containers/image turns the token service's 401 into this (docker/errors.go).
REFUSED = r"unable to retrieve auth token: invalid username/password: unauthorized"
DENIED = r"requested access to the resource is denied|authentication required"


@dataclass(frozen=True)
class Log:
    """The authsvc log: token issuance lines and access log lines after a mark."""

    path: Path

    def mark(self) -> int:
        """Return the current size of the log."""
        settle_log()
        return self.path.stat().st_size

    def since(self, mark: int) -> list[str]:
        """Return the lines logged after ``mark``."""
        settle_log()
        with self.path.open("rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace").splitlines()

    def issued_since(self, mark: int) -> list[str]:
        """Return the audit lines of tokens issued after ``mark``."""
        return token_lines(self.since(mark))


def grants(lines: list[str], grant_type: str, sub: str, client_id: str = CLIENT_ID) -> list[str]:
    """Return the lines of tokens issued with ``grant_type`` to ``sub`` for ``client_id``."""
    return audit_grants(lines, grant_type, sub, client_id)


def fetch_refresh_token(authsvc: AuthsvcInstance, creds: Credentials) -> dict[str, object]:
    """``GET /token?offline_token=true&client_id=containers/image`` with Basic auth; the JSON."""
    with requests.Session() as session:
        session.trust_env = False  # no proxies, no netrc
        response = session.get(
            f"{authsvc.url}/token",
            params={"service": "registry", "offline_token": "true", "client_id": CLIENT_ID,
                    "account": creds.username},
            auth=(creds.username, creds.password), verify=str(authsvc.ca_file), timeout=15)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def write_authfile(path: Path, address: str, token: str, user: str | None) -> Path:
    """Write an auth.json holding ``identitytoken`` (and ``auth`` = base64("USER:") if given)."""
    entry = {"identitytoken": token}
    if user is not None:
        entry["auth"] = base64.b64encode(f"{user}:".encode()).decode()
    path.write_text(json.dumps({"auths": {address: entry}}))
    path.chmod(0o600)
    return path


@dataclass(frozen=True)
class Tools:
    """skopeo and podman with the conftest's private environment, using an explicit auth file."""

    env: Mapping[str, str]
    cert_dir: Path

    def skopeo_push(self, oci_ref: str, dest: str, authfile: Path) -> Result:
        """``skopeo copy OCI docker://DEST`` with credentials from ``authfile``."""
        return run(["skopeo", "copy", "--dest-tls-verify=true", "--dest-cert-dir",
                    str(self.cert_dir), "--dest-authfile", str(authfile), oci_ref,
                    f"docker://{dest}"], self.env)

    def podman(self, *args: str, authfile: Path) -> Result:
        """``podman ARGS`` (pull or push) with TLS checks and credentials from ``authfile``."""
        command, *rest = args
        return run(["podman", command, "--tls-verify=true", "--cert-dir", str(self.cert_dir),
                    "--authfile", str(authfile), *rest], self.env)


@pytest.fixture(scope="module")
def tools(client_env: Mapping[str, str], client_cert_dir: Path) -> Tools:
    """Return skopeo and podman configured like the other e2e tests."""
    return Tools(client_env, client_cert_dir)


@pytest.fixture(scope="module")
def log(authsvc: AuthsvcInstance) -> Log:
    """Return the authsvc server log."""
    return Log(authsvc.service.log_path)


def refresh_token_ids(authsvc: AuthsvcInstance, user: str) -> set[int]:
    """Return the ids of ``user``'s refresh tokens issued to containers/image."""
    listed = authsvc.cli.ok("refresh-token", "list", user)
    return {int(fields[0]) for fields in (line.split("\t") for line in listed.stdout.splitlines())
            if len(fields) >= 3 and fields[0].isdigit() and fields[2] == CLIENT_ID}


@dataclass(frozen=True)
class IssuedRefreshToken:
    """A refresh token fetched for alice, its id in authsvc, and the log lines of the fetch."""

    body: dict[str, object]
    token: str
    token_id: int
    issued: list[str]


def issue_refresh_token(authsvc: AuthsvcInstance, log: Log,
                        creds: Credentials) -> IssuedRefreshToken:
    """Fetch a new refresh token for ``creds`` and find its id with ``refresh-token list``."""
    before = refresh_token_ids(authsvc, creds.username)
    mark = log.mark()
    body = fetch_refresh_token(authsvc, creds)
    issued = log.issued_since(mark)
    new_ids = refresh_token_ids(authsvc, creds.username) - before
    assert len(new_ids) == 1, f"expected one new refresh token, got {new_ids}"
    token = body.get("refresh_token")
    assert isinstance(token, str) and token, body.keys()
    return IssuedRefreshToken(body, token, new_ids.pop(), issued)


@pytest.fixture(scope="module")
def alice_refresh(authsvc: AuthsvcInstance, log: Log,
                  users: dict[str, Credentials]) -> IssuedRefreshToken:
    """A refresh token for alice, as ``docker login`` would get it, but for containers/image."""
    return issue_refresh_token(authsvc, log, users["alice"])


def test_get_token_with_offline_token_returns_a_refresh_token(
        alice_refresh: IssuedRefreshToken, users: dict[str, Credentials]) -> None:
    """The GET answer carries the access token and a refresh token; the log names the client."""
    body = alice_refresh.body
    assert body["token"] == body["access_token"]
    assert alice_refresh.token not in (body["token"], users["alice"].password)
    basic = grants(alice_refresh.issued, "basic", "alice")
    assert len(basic) == 1, alice_refresh.issued


def test_identity_token_without_auth_is_ignored(
        tmp_path: Path, tools: Tools, registry: Registry, log: Log,
        alice_refresh: IssuedRefreshToken, make_image: ImageFactory) -> None:
    """An entry holding only ``identitytoken`` is dropped by containers/image: it goes anonymous."""
    authfile = write_authfile(tmp_path / "auth.json", registry.address, alice_refresh.token, None)
    mark = log.mark()
    result = tools.skopeo_push(make_image(REPO).reference, registry.ref(REPO, "no-auth"),
                               authfile)
    assert result.returncode != 0, result.describe()
    assert re.search(DENIED, result.output, re.IGNORECASE), result.describe()
    issued = log.issued_since(mark)
    assert grants(issued, "anonymous", "-", "-"), issued
    assert not grants(issued, "refresh_token", "alice"), issued


def test_skopeo_and_podman_redeem_the_identity_token(
        tmp_path: Path, tools: Tools, registry: Registry, log: Log,
        alice_refresh: IssuedRefreshToken, make_image: ImageFactory) -> None:
    """skopeo copy (push), podman pull and podman push all get tokens by the refresh grant."""
    authfile = write_authfile(tmp_path / "auth.json", registry.address, alice_refresh.token,
                              "alice")
    v1, v2 = registry.ref(REPO, "v1"), registry.ref(REPO, "v2")
    mark = log.mark()
    pushed = tools.skopeo_push(make_image(REPO).reference, v1, authfile)
    assert pushed.returncode == 0, pushed.describe()
    pulled = tools.podman("pull", v1, authfile=authfile)
    assert pulled.returncode == 0, pulled.describe()
    pushed_again = tools.podman("push", v1, f"docker://{v2}", authfile=authfile)
    assert pushed_again.returncode == 0, pushed_again.describe()

    issued = log.issued_since(mark)
    refreshed = grants(issued, "refresh_token", "alice")
    assert len(refreshed) >= 3, "\n".join(issued)
    assert any(scope_actions(line, "granted", REPO) == {"pull", "push"}
               for line in refreshed), "\n".join(refreshed)
    others = [line for line in issued if line not in refreshed]
    assert not others, "other grants than the refresh token:\n" + "\n".join(others)
    posts = [line for line in log.since(mark) if '"POST /token HTTP/1.1" 200' in line]
    assert len(posts) >= len(refreshed), "\n".join(log.since(mark))


def test_revoked_refresh_token_is_refused(
        tmp_path: Path, tools: Tools, registry: Registry, log: Log, authsvc: AuthsvcInstance,
        users: dict[str, Credentials], make_image: ImageFactory) -> None:
    """After ``authsvc refresh-token revoke ID`` the same auth file no longer works."""
    issued_token = issue_refresh_token(authsvc, log, users["alice"])
    authfile = write_authfile(tmp_path / "auth.json", registry.address, issued_token.token,
                              "alice")
    image = make_image(REPO)
    ref = registry.ref(REPO, "revoked")
    before = tools.skopeo_push(image.reference, ref, authfile)
    assert before.returncode == 0, before.describe()

    authsvc.cli.ok("refresh-token", "revoke", str(issued_token.token_id))
    assert issued_token.token_id not in refresh_token_ids(authsvc, "alice")
    mark = log.mark()
    push = tools.skopeo_push(image.reference, ref, authfile)
    pull = tools.podman("pull", ref, authfile=authfile)
    for result in (push, pull):
        assert result.returncode != 0, result.describe()
        assert re.search(REFUSED, result.output, re.IGNORECASE), result.describe()
    assert not grants(log.issued_since(mark), "refresh_token", "alice"), log.issued_since(mark)
    refused = [line for line in log.since(mark) if '"POST /token HTTP/1.1" 401' in line]
    assert refused, "\n".join(log.since(mark))

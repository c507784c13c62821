"""The tutorial, end to end: real docker-registry, real skopeo and podman, real authsvc.

alice owns the ``alice/`` namespace and pushes ``alice/httpd``; bob and mallory
are other users; the admin owns single-name repositories. Each test checks what
a user would check: the exit status of the tool and the text it prints.

Tests that change who may see ``alice/httpd`` (visibility, grants, extra tags)
undo the change before they end and assert that the undo took effect, so every
test also passes on its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .clients import Credentials, Podman, Result, Skopeo, expect_failure, expect_success
from .oci_layout import read_layer_file
from .processes import https_headers
from .world import (
    HTTPD_TAGS,
    AuthsvcInstance,
    ImageFactory,
    PushedRepo,
    Registry,
    new_password,
)

pytestmark = pytest.mark.e2e

# What skopeo/podman print when the *registry* refuses the token's scope (its 401 body).
DENIED = r"requested access to the resource is denied|authentication required"
# What they print when the *token service* answers 401 to the credentials.
BAD_CREDENTIALS = r"unable to retrieve auth token: invalid username/password"
MISSING_MANIFEST = r"manifest unknown"
WROTE_MANIFEST = "Writing manifest to image destination"

Users = dict[str, Credentials]


def _push_tag(skopeo: Skopeo, registry: Registry, make_image: ImageFactory,
              owner: Credentials, repo: str, tag: str) -> str:
    """Push a distinct image to ``repo:tag`` as ``owner``; return its manifest digest."""
    image = make_image(f"{repo}:{tag}")
    expect_success(skopeo.push(image, registry.ref(repo, tag), owner))
    return image.manifest_digest


def _expect_pulled(result: Result) -> None:
    """Assert a successful copy that wrote the image."""
    expect_success(result)
    assert WROTE_MANIFEST in result.output, result.describe()


def test_registry_sends_clients_to_authsvc(registry: Registry, authsvc: AuthsvcInstance) -> None:
    """The registry's challenge names authsvc's public URL as the realm."""
    headers = https_headers("127.0.0.1", registry.port, "/v2/", authsvc.ca_file)
    challenge = headers["www-authenticate"]
    assert challenge.startswith(f'Bearer realm="{authsvc.url}/'), challenge
    assert 'service="registry"' in challenge


def test_owner_push_shows_all_tags(skopeo: Skopeo, registry: Registry,
                                   alice_httpd: PushedRepo) -> None:
    """alice pushed four tags; list-tags shows exactly those."""
    result = expect_success(skopeo.list_tags(registry.ref("alice/httpd"), alice_httpd.owner))
    listing = json.loads(result.stdout)
    assert listing["Repository"] == registry.ref("alice/httpd")
    assert sorted(listing["Tags"]) == sorted(HTTPD_TAGS)


def test_all_tags_share_one_digest(skopeo: Skopeo, registry: Registry,
                                   alice_httpd: PushedRepo) -> None:
    """Every tag names the very manifest that was built locally."""
    digests = {tag: skopeo.digest(registry.ref("alice/httpd", tag), alice_httpd.owner)
               for tag in HTTPD_TAGS}
    assert set(digests.values()) == {alice_httpd.image.manifest_digest}, digests


def test_owner_pulls_image_back(skopeo: Skopeo, registry: Registry, alice_httpd: PushedRepo,
                                tmp_path: Path) -> None:
    """alice copies ``alice/httpd:1.9`` back and finds the file she pushed."""
    layout = tmp_path / "pulled"
    _expect_pulled(skopeo.pull(registry.ref("alice/httpd", "1.9"), layout, "1.9",
                               alice_httpd.owner))
    image = alice_httpd.image
    assert read_layer_file(layout, "1.9", image.file_name) == image.file_content


def test_other_user_cannot_push_to_owner_repo(skopeo: Skopeo, registry: Registry,
                                              alice_httpd: PushedRepo, users: Users,
                                              make_image: ImageFactory) -> None:
    """bob's push into ``alice/httpd`` is refused, and no tag appears."""
    image = make_image("bob/impostor")
    expect_failure(skopeo.push(image, registry.ref("alice/httpd", "bob"), users["bob"]), DENIED)
    assert skopeo.tags(registry.ref("alice/httpd"), alice_httpd.owner) == set(HTTPD_TAGS)


@pytest.mark.parametrize("who", ["bob", "anonymous"])
def test_private_repo_is_hidden_from_others(skopeo: Skopeo, registry: Registry,
                                            alice_httpd: PushedRepo, users: Users,
                                            tmp_path: Path, who: str) -> None:
    """Neither bob nor an anonymous client can inspect, list or pull a private repo."""
    identity = users.get(who)
    ref = registry.ref("alice/httpd", "v1")
    expect_failure(skopeo.inspect(ref, identity), DENIED)
    expect_failure(skopeo.list_tags(registry.ref("alice/httpd"), identity), DENIED)
    expect_failure(skopeo.pull(ref, tmp_path / "pulled", "v1", identity), DENIED)


def test_public_repo_can_be_pulled_but_not_pushed_anonymously(
    skopeo: Skopeo, registry: Registry, authsvc: AuthsvcInstance, alice_httpd: PushedRepo,
    users: Users, make_image: ImageFactory, tmp_path: Path,
) -> None:
    """After ``repo visibility alice/httpd public`` anyone may pull; only alice may push."""
    ref = registry.ref("alice/httpd", "v1")
    expect_failure(skopeo.inspect(ref, None), DENIED)

    authsvc.cli.ok("repo", "visibility", "alice/httpd", "public")
    try:
        assert skopeo.digest(ref, None) == alice_httpd.image.manifest_digest
        _expect_pulled(skopeo.pull(ref, tmp_path / "pulled", "v1", None))
        assert skopeo.tags(registry.ref("alice/httpd"), None) == set(HTTPD_TAGS)
        graffiti = make_image("anonymous/graffiti")
        target = registry.ref("alice/httpd", "graffiti")
        expect_failure(skopeo.push(graffiti, target, None), DENIED)
        expect_failure(skopeo.push(graffiti, target, users["bob"]), DENIED)
        assert skopeo.tags(registry.ref("alice/httpd"), None) == set(HTTPD_TAGS)
    finally:
        authsvc.cli.ok("repo", "visibility", "alice/httpd", "private")
    expect_failure(skopeo.inspect(ref, None), DENIED)


def test_pull_grant_allows_pull_but_not_push(
    skopeo: Skopeo, registry: Registry, authsvc: AuthsvcInstance, alice_httpd: PushedRepo,
    users: Users, make_image: ImageFactory, tmp_path: Path,
) -> None:
    """``grant bob alice/httpd pull`` lets bob pull, still not push; ``revoke`` undoes it."""
    ref = registry.ref("alice/httpd", "latest")
    bob = users["bob"]
    expect_failure(skopeo.inspect(ref, bob), DENIED)

    authsvc.cli.ok("grant", "bob", "alice/httpd", "pull")
    try:
        assert skopeo.digest(ref, bob) == alice_httpd.image.manifest_digest
        _expect_pulled(skopeo.pull(ref, tmp_path / "pulled", "latest", bob))
        expect_failure(skopeo.push(make_image("bob/httpd"), registry.ref("alice/httpd", "bob"),
                                   bob), DENIED)
        expect_failure(skopeo.inspect(ref, None), DENIED)
    finally:
        authsvc.cli.ok("revoke", "bob", "alice/httpd")
    expect_failure(skopeo.inspect(ref, bob), DENIED)


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "not-the-password"), ("nobody", "whatever")],
    ids=["wrong-password", "unknown-user"],
)
def test_skopeo_refuses_bad_credentials(skopeo: Skopeo, registry: Registry,
                                        alice_httpd: PushedRepo, username: str,
                                        password: str) -> None:
    """Bad credentials fail at the token service, before the registry is asked."""
    creds = Credentials(username, password)
    result = skopeo.inspect(registry.ref("alice/httpd", "v1"), creds)
    expect_failure(result, BAD_CREDENTIALS)
    assert "requested access to the resource is denied" not in result.output


@pytest.mark.parametrize(
    ("password_kind", "succeeds", "message"),
    [("right", True, r"Login Succeeded!"), ("wrong", False, r"invalid username/password")],
)
def test_podman_login(podman: Podman, registry: Registry, users: Users, tmp_path: Path,
                      password_kind: str, succeeds: bool, message: str) -> None:
    """``podman login`` accepts alice's password and refuses a wrong one."""
    alice = users["alice"]
    password = alice.password if password_kind == "right" else new_password()
    authfile = tmp_path / "auth.json"
    result = podman.login(registry.address, Credentials("alice", password), authfile)
    if succeeds:
        expect_success(result)
        assert message in result.output, result.describe()
        assert registry.address in json.loads(authfile.read_text())["auths"]
    else:
        expect_failure(result, message)
        assert not authfile.exists() or registry.address not in authfile.read_text()


def test_delete_needs_the_delete_right(
    skopeo: Skopeo, registry: Registry, authsvc: AuthsvcInstance, alice_httpd: PushedRepo,
    users: Users, make_image: ImageFactory,
) -> None:
    """bob may delete a tag of ``alice/httpd`` only once granted delete; alice always may."""
    alice, bob = users["alice"], users["bob"]
    _push_tag(skopeo, registry, make_image, alice, "alice/httpd", "1.8")
    old = registry.ref("alice/httpd", "1.8")
    authsvc.cli.ok("grant", "bob", "alice/httpd", "pull")
    try:
        # The registry's 401 names the missing action: {"Action":"delete"} (quotes escaped).
        expect_failure(skopeo.delete(old, bob), r"Failed to delete .*Action\W+delete")
        assert skopeo.tags(registry.ref("alice/httpd"), alice) == {*HTTPD_TAGS, "1.8"}

        authsvc.cli.ok("grant", "bob", "alice/httpd", "pull,delete")
        expect_success(skopeo.delete(old, bob))
        expect_failure(skopeo.inspect(old, alice), MISSING_MANIFEST)
        assert skopeo.tags(registry.ref("alice/httpd"), alice) == set(HTTPD_TAGS)
    finally:
        authsvc.cli.ok("revoke", "bob", "alice/httpd")

    _push_tag(skopeo, registry, make_image, alice, "alice/httpd", "1.7")
    older = registry.ref("alice/httpd", "1.7")
    expect_failure(skopeo.delete(older, bob), DENIED)
    expect_success(skopeo.delete(older, alice))
    expect_failure(skopeo.inspect(older, alice), MISSING_MANIFEST)
    assert skopeo.tags(registry.ref("alice/httpd"), alice) == set(HTTPD_TAGS)


@pytest.mark.parametrize("who", ["mallory", "anonymous"])
def test_stranger_cannot_create_repo_in_owner_namespace(
    skopeo: Skopeo, registry: Registry, users: Users, make_image: ImageFactory, who: str,
) -> None:
    """Nobody but alice can create a repository under ``alice/``."""
    repo = f"alice/from-{who}"
    result = skopeo.push(make_image(repo), registry.ref(repo, "v1"), users.get(who))
    expect_failure(result, DENIED)
    expect_failure(skopeo.inspect(registry.ref(repo, "v1"), users["alice"]), MISSING_MANIFEST)


def test_admin_repo_is_pushed_by_admin_only(
    skopeo: Skopeo, registry: Registry, authsvc: AuthsvcInstance, users: Users,
    make_image: ImageFactory,
) -> None:
    """The admin's single-name repo ``httpd`` refuses alice's push and takes the admin's."""
    authsvc.cli.ok("repo", "add", "httpd", "--private")
    image = make_image("httpd")
    ref = registry.ref("httpd", "2.4")

    expect_failure(skopeo.push(image, ref, users["alice"]), DENIED)
    expect_success(skopeo.push(image, ref, authsvc.admin))

    assert skopeo.digest(ref, authsvc.admin) == image.manifest_digest
    expect_failure(skopeo.inspect(ref, users["alice"]), DENIED)


def test_podman_push_and_pull_as_owner(
    podman: Podman, skopeo: Skopeo, registry: Registry, users: Users,
    make_image: ImageFactory, tmp_path: Path,
) -> None:
    """alice logs in with podman, pushes a local image to ``alice/alpine``, and pulls it."""
    image = make_image("alice/alpine")
    ref = registry.ref("alice/alpine", "3.19")
    loaded = expect_success(podman.run("pull", image.reference))
    expect_success(podman.run("tag", loaded.stdout.split()[-1], ref))
    authfile = tmp_path / "alice-auth.json"
    expect_success(podman.login(registry.address, users["alice"], authfile))

    _expect_pulled(podman.push(ref, authfile))
    expect_success(podman.run("rmi", ref))
    _expect_pulled(podman.pull(ref, authfile))
    expect_success(podman.run("image", "exists", ref))
    assert skopeo.tags(registry.ref("alice/alpine"), users["alice"]) == {"3.19"}

    bob_auth = tmp_path / "bob-auth.json"
    expect_success(podman.login(registry.address, users["bob"], bob_auth))
    expect_failure(podman.push(ref, bob_auth), DENIED)
    expect_failure(podman.pull(ref, bob_auth), DENIED)

"""A user whose name holds a dot owns their namespace at the real registry (issue 10, finding 2).

The registry asks for access to the repository name it serves, ``john.smith/app``; authsvc
once took ``john.smith`` for a registry host and decided on ``app`` instead, so john.smith could
not push their own repository and bob could push ``john.smith/bob/app``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .clients import Credentials, Skopeo, expect_failure, expect_success
from .world import AuthsvcInstance, ImageFactory, Registry, new_password

pytestmark = pytest.mark.e2e
DENIED = r"requested access to the resource is denied|authentication required"


@pytest.fixture(scope="module")
def john(authsvc: AuthsvcInstance) -> Credentials:
    creds = Credentials("john.smith", new_password())
    authsvc.cli.add_user(creds)
    return creds


def test_a_dotted_user_pushes_and_pulls_their_own_repository(
        registry: Registry, skopeo: Skopeo, john: Credentials, make_image: ImageFactory,
        tmp_path: Path) -> None:
    image = make_image("john.smith/app")
    expect_success(skopeo.push(image, registry.ref("john.smith/app", "v1"), john))
    expect_success(skopeo.pull(registry.ref("john.smith/app", "v1"), tmp_path / "app", "v1",
                               john))


def test_nobody_else_writes_into_a_dotted_namespace(
        authsvc: AuthsvcInstance, registry: Registry, skopeo: Skopeo, john: Credentials,
        users: dict[str, Credentials], make_image: ImageFactory) -> None:
    bob = users["bob"]
    image = make_image("john.smith/bob/app")
    expect_failure(skopeo.push(image, registry.ref("john.smith/bob/app", "v1"), bob), DENIED)
    # a public single-name repository says nothing about john.smith's one of that name
    authsvc.cli.ok("repo", "add", "httpd", "--public")
    expect_success(skopeo.push(make_image("john.smith/httpd"),
                               registry.ref("john.smith/httpd", "v1"), john))
    expect_failure(skopeo.inspect(registry.ref("john.smith/httpd", "v1"), bob), DENIED)


def test_a_grant_on_a_dotted_namespace_takes_effect(
        authsvc: AuthsvcInstance, registry: Registry, skopeo: Skopeo, john: Credentials,
        users: dict[str, Credentials], make_image: ImageFactory) -> None:
    bob = users["bob"]
    expect_success(skopeo.push(make_image("john.smith/shared"),
                               registry.ref("john.smith/shared", "v1"), john))
    expect_failure(skopeo.inspect(registry.ref("john.smith/shared", "v1"), bob), DENIED)
    authsvc.cli.ok("grant", "bob", "john.smith/shared", "pull")
    expect_success(skopeo.inspect(registry.ref("john.smith/shared", "v1"), bob))
    authsvc.cli.ok("revoke", "bob", "john.smith/shared")
    expect_failure(skopeo.inspect(registry.ref("john.smith/shared", "v1"), bob), DENIED)

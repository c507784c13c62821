"""The Authorization header to a Subject (``authsvc.web.api.auth_header``), one function for
``/token`` (Basic, or none: anonymous) and the API (Basic or Bearer, required)."""

import base64
from typing import Any, cast

import pytest

from authsvc.core.policy import ANONYMOUS, Subject
from authsvc.db.credentials import Credentials
from authsvc.errors import AuthenticationFailed
from authsvc.web.api.auth_header import authorization, subject_from_header

ADDRESS = "192.0.2.7"
REQUIRED = "authentication required: Basic or Bearer credentials"
WRONG = "incorrect username or password"


class FakeCredentials:
    """Records what would be checked; every check succeeds."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def basic(self, username: str, secret: str, address: str | None = None) -> Subject:
        self.calls.append(("basic", username, secret, address or ""))
        return Subject(username)

    def bearer(self, secret: str, address: str | None = None) -> Subject:
        self.calls.append(("bearer", secret, address or ""))
        return Subject("bearer-user")


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


#: header → (what /token checks, what the API checks): a credentials call, ANONYMOUS, or the
#: message of the AuthenticationFailed raised before anything is checked.
CASES: list[tuple[str | None, Any, Any]] = [
    (None, ANONYMOUS, REQUIRED),
    ("", WRONG, REQUIRED),
    (basic(b"alice:pw"), ("basic", "alice", "pw", ADDRESS), ("basic", "alice", "pw", ADDRESS)),
    (basic(b"alice:"), ("basic", "alice", "", ADDRESS), REQUIRED),  # login attempt vs missing
    (basic(b"alice"), ("basic", "alice", "", ADDRESS), REQUIRED),
    (basic(b":pw"), WRONG, REQUIRED),
    (basic(b"al\x00ice:pw"), WRONG, REQUIRED),
    ("Basic not-base64!", WRONG, REQUIRED),
    ("Bearer authsvc_pat_x", WRONG, ("bearer", "authsvc_pat_x", ADDRESS)),
    ("Digest username=alice", WRONG, REQUIRED),
]


@pytest.mark.parametrize("header,token,api", CASES)
@pytest.mark.parametrize("mode", ["token", "api"])
def test_token_and_api_read_the_header_alike_but_for_their_differences(
        header: str | None, token: Any, api: Any, mode: str) -> None:
    """/token: Basic only, no header is anonymous and any header a login attempt; the API:
    Basic or Bearer, required."""
    expected = token if mode == "token" else api
    credentials = FakeCredentials()

    def subject() -> Subject:
        return subject_from_header(header, cast(Credentials, credentials), ADDRESS,
                                   bearer=mode == "api", anonymous=mode == "token")

    if isinstance(expected, str):
        with pytest.raises(AuthenticationFailed) as refused:
            subject()
        assert refused.value.message == expected
        assert credentials.calls == []
    elif expected is ANONYMOUS:
        assert subject() is ANONYMOUS and credentials.calls == []
    else:
        subject()
        assert credentials.calls == [expected]


def test_without_bearer_and_anonymous_the_message_names_basic_only() -> None:
    with pytest.raises(AuthenticationFailed, match="^authentication required: Basic cred"):
        subject_from_header(None, cast(Credentials, FakeCredentials()), None, bearer=False,
                            anonymous=False)


@pytest.mark.parametrize("header", [None, "", "Basic %%%", basic(b"a\x00:b"), "Bearer a\x00b",
                                    "Basic " + base64.b64encode("é:x".encode("latin-1")).decode()])
def test_a_missing_or_unreadable_header_is_none(header: str | None) -> None:
    """Bad base64, NUL, bytes that are not UTF-8: None, answered 401, never a 500."""
    assert authorization(header) is None

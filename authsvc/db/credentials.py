"""Authentication: turning credentials into a Subject (a password or an access token in Basic
auth, an access token as a Bearer secret, or a refresh token). What the Subject may then do is
authorization, ``access.Authorizer``. Every failure is counted by the login throttle and
written to the audit trail.

Passwords and tokens are throttled differently:

- A password can be guessed. Past the account's or the address's limit its login is refused
  before anything is checked; when the password is checked with bcrypt (not answered from the
  credential cache), the login is counted first, atomically with the limits
  (``LoginThrottle.attempt``), so logins sent all at once get at most the limit checked.
- An access or refresh token has 256 random bits and cannot be guessed: a valid one is accepted
  without a lockout read, whatever the account's password failures or the address's count. A
  wrong one counts against the address (never the account) and past its limit gets 429.

A user name that looks like a secret (a client that sends its token as the user name) is never
recorded: the audit trail, its log line and the lockout keys get a fingerprint instead.
"""

import hashlib
from collections.abc import Callable

from authsvc.core.policy import Subject
from authsvc.db import access_tokens, refresh_tokens
from authsvc.db.access_tokens import AccessTokens
from authsvc.db.accounts import Accounts
from authsvc.db.audit import Audit, Event
from authsvc.db.lockout import Attempt, LoginThrottle
from authsvc.db.reads import Wanted
from authsvc.db.refresh_tokens import RefreshTokens
from authsvc.errors import AuthenticationFailed, TooManyAttempts

SECRET_PREFIXES = (access_tokens.PREFIX, refresh_tokens.PREFIX)


def looks_like_secret(name: str) -> bool:
    """Whether ``name`` holds an access or refresh token, or looks like a JWT (three
    base64url parts, the first a JSON object)."""
    if "authsvc_" in name:  # both prefixes start so: one search for the usual name
        return any(prefix in name for prefix in SECRET_PREFIXES)
    return name.startswith("eyJ") and name.count(".") == 2


def recordable_name(name: str) -> str:
    """``name`` as the audit trail and the lockout may hold it: itself, or for a name that
    looks like a secret ``<secret:…>`` with 12 hex digits of a hash of it (the same for the
    same value, so its failures are still counted together; not reversible)."""
    if not looks_like_secret(name):
        return name
    digest = hashlib.sha256(b"authsvc recorded name\0"
                            + name.encode("utf-8", "surrogateescape")).hexdigest()
    return f"<secret:{digest[:12]}>"


class Credentials:
    """Authenticates every kind of credential through the account and token services."""

    def __init__(self, accounts: Accounts, tokens: AccessTokens, refresh: RefreshTokens,
                 throttle: LoginThrottle, audit: Audit) -> None:
        self.accounts = accounts
        self.tokens = tokens
        self.refresh_tokens = refresh
        self.throttle = throttle
        self.audit = audit

    def _audit_refusal(self, name: str | None, how: str,
                       error: AuthenticationFailed | TooManyAttempts) -> None:
        self.audit.record(Event("login.failed", target=(name or "")[:300],
                                detail=f"{how}: {error.message}"), actor=(name or "")[:300])

    def reads_ahead(self, username: str, secret: str) -> list[Wanted]:
        """The reads ``basic`` makes for these credentials besides the lockout's, for
        ``Reads.ahead``."""
        if secret.startswith(access_tokens.PREFIX):
            return self.tokens.reads_ahead(secret)
        return self.accounts.reads_ahead(username)

    def basic(self, username: str, secret: str, address: str | None = None) -> Subject:
        """Basic auth: ``secret`` is the user's password or one of their access tokens.

        Raises AuthenticationFailed, or TooManyAttempts past a limit (see the module).
        """
        name = recordable_name(username)
        if secret.startswith(access_tokens.PREFIX):
            return self._token(lambda: self.tokens.authenticate(secret, username), name,
                               address, "access token")
        try:
            return self._password(username, name, secret, address)
        except (AuthenticationFailed, TooManyAttempts) as error:
            self._audit_refusal(name, "password", error)
            raise

    def _password(self, username: str, name: str, password: str,
                  address: str | None) -> Subject:
        """A password login, counted under ``name``: before bcrypt, atomically with the
        limits (``LoginThrottle.attempt``). Raises AuthenticationFailed or TooManyAttempts."""
        account_has_failures = self.throttle.check(name, address)
        attempts: list[Attempt] = []

        def count_attempt() -> None:
            attempts.append(self.throttle.attempt(name, address))

        subject = self.accounts.authenticate(username, password, before_hashing=count_attempt)
        if attempts or account_has_failures:
            self.throttle.succeeded(name, attempts[0] if attempts else None)
        return subject

    def bearer(self, secret: str, address: str | None = None) -> Subject:
        """``Authorization: Bearer``: only access tokens are accepted. Raises
        AuthenticationFailed, or TooManyAttempts for a wrong one past the address's limit."""

        def authenticate() -> Subject:
            if not secret.startswith(access_tokens.PREFIX):
                raise AuthenticationFailed("invalid access token")
            return self.tokens.authenticate(secret)

        return self._token(authenticate, None, address, "bearer")

    def refresh(self, secret: str, service: str, client_id: str,
                address: str | None = None) -> Subject:
        """The OAuth2 refresh grant: the subject a refresh token stands for. Raises
        AuthenticationFailed, or TooManyAttempts for a wrong one past the address's limit.

        Docker sends this grant on every push and pull: a valid token costs no lockout read.
        """
        return self._token(lambda: self.refresh_tokens.redeem(secret, service, client_id),
                           None, address, "refresh token")

    def _token(self, authenticate: Callable[[], Subject], name: str | None,
               address: str | None, how: str) -> Subject:
        """A login with a token that cannot be guessed: ``authenticate``'s subject, with no
        lockout read. A wrong token is counted against the address and answered 401, or 429
        (not counted) past the address's limit."""
        try:
            return authenticate()
        except AuthenticationFailed as failed:
            error: AuthenticationFailed | TooManyAttempts = failed
            try:
                self.throttle.attempt(None, address)
            except TooManyAttempts as locked:
                error = locked
            self._audit_refusal(name, how, error)
            raise error from None

"""Turning credentials into a Subject: a password or an access token in Basic auth, an access
token as a Bearer secret, or a refresh token. Every failure is counted by the login throttle and
written to the audit trail; past the limit, logins are refused before any secret is checked."""

from authsvc import access_tokens
from authsvc.access_tokens import AccessTokens
from authsvc.accounts import Accounts
from authsvc.audit import Audit, Event
from authsvc.errors import AuthenticationFailed, TooManyAttempts
from authsvc.lockout import LoginThrottle
from authsvc.policy import Subject
from authsvc.refresh_tokens import RefreshTokens


class Credentials:
    def __init__(self, accounts: Accounts, tokens: AccessTokens, refresh: RefreshTokens,
                 throttle: LoginThrottle, audit: Audit) -> None:
        self.accounts = accounts
        self.tokens = tokens
        self.refresh_tokens = refresh
        self.throttle = throttle
        self.audit = audit

    def _refuse(self, username: str | None, address: str | None, how: str,
                error: AuthenticationFailed | TooManyAttempts) -> None:
        if isinstance(error, AuthenticationFailed):
            self.throttle.failed(username, address)
        self.audit.record(Event("login.failed", target=(username or "")[:300],
                                detail=f"{how}: {error.message}"), actor=(username or "")[:300])

    def basic(self, username: str, secret: str, address: str | None = None) -> Subject:
        """Basic auth: ``secret`` is the user's password or one of their access tokens."""
        how = "access token" if secret.startswith(access_tokens.PREFIX) else "password"
        try:
            account_has_failures = self.throttle.check(username, address)
            if how == "access token":
                subject = self.tokens.authenticate(secret, username)
            else:
                subject = self.accounts.authenticate(username, secret)
        except (AuthenticationFailed, TooManyAttempts) as error:
            self._refuse(username, address, how, error)
            raise
        if account_has_failures:
            self.throttle.succeeded(username)
        return subject

    def bearer(self, secret: str, address: str | None = None) -> Subject:
        """``Authorization: Bearer``: only access tokens are accepted."""
        try:
            self.throttle.check(None, address)
            if not secret.startswith(access_tokens.PREFIX):
                raise AuthenticationFailed("invalid access token")
            return self.tokens.authenticate(secret)
        except (AuthenticationFailed, TooManyAttempts) as error:
            self._refuse(None, address, "bearer", error)
            raise

    def refresh(self, secret: str, service: str, client_id: str,
                address: str | None = None) -> Subject:
        """The OAuth2 refresh grant: the subject a refresh token stands for.

        The address's lockout is checked once the token fails: a refresh token has 256 random
        bits, so a valid one cannot have been guessed, and the grant Docker sends on every
        push and pull skips a lockout read. Past the limit, wrong tokens get 429.
        """
        try:
            return self.refresh_tokens.redeem(secret, service, client_id)
        except AuthenticationFailed as failed:
            error: AuthenticationFailed | TooManyAttempts = failed
            try:
                self.throttle.check(None, address)
            except TooManyAttempts as locked:
                error = locked
            self._refuse(None, address, "refresh token", error)
            raise error from None

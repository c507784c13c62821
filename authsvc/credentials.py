"""Turning credentials into a Subject: a password or an access token in Basic auth, or an
access token as a Bearer secret."""

from authsvc import access_tokens
from authsvc.access_tokens import AccessTokens
from authsvc.accounts import Accounts
from authsvc.errors import AuthenticationFailed
from authsvc.policy import Subject


class Credentials:
    def __init__(self, accounts: Accounts, tokens: AccessTokens) -> None:
        self.accounts = accounts
        self.tokens = tokens

    def basic(self, username: str, secret: str) -> Subject:
        """Basic auth: ``secret`` is the user's password or one of their access tokens."""
        if secret.startswith(access_tokens.PREFIX):
            return self.tokens.authenticate(secret, username)
        return self.accounts.authenticate(username, secret)

    def bearer(self, secret: str) -> Subject:
        """``Authorization: Bearer``: only access tokens are accepted."""
        if not secret.startswith(access_tokens.PREFIX):
            raise AuthenticationFailed("invalid access token")
        return self.tokens.authenticate(secret)

"""Password hashing through passlib's CryptContext (libpass), with upgrade on login."""

import secrets
from functools import cached_property

from passlib.context import CryptContext

from authsvc.errors import InvalidPassword

#: bcrypt reads at most 72 bytes; longer secrets are refused rather than silently truncated.
MAX_PASSWORD_BYTES = 72
MIN_PASSWORD_CHARS = 8


def check_new_password(password: str) -> None:
    """Raise InvalidPassword when ``password`` breaks the policy (length in chars and bytes)."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidPassword(f"password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise InvalidPassword(f"password must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8")
    if "\x00" in password:
        raise InvalidPassword("password must not contain NUL characters")


def generate_password() -> str:
    """A random password for generated accounts (about 190 bits, URL-safe)."""
    return secrets.token_urlsafe(24)


class PasswordHasher:
    """Hashes and verifies passwords; hashes made with weaker settings are upgraded on login."""

    def __init__(self, rounds: int = 12) -> None:
        self.context = CryptContext(schemes=["bcrypt"], deprecated="auto",
                                    bcrypt__default_rounds=rounds, bcrypt__min_rounds=rounds)

    @cached_property
    def _dummy(self) -> str:
        """Verified against for unknown users, so both cases cost the same time."""
        return str(self.context.hash(secrets.token_urlsafe(16)))

    def hash(self, password: str) -> str:
        check_new_password(password)
        return str(self.context.hash(password))

    def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        """Return (matches, replacement hash or None). Never raises for bad input.

        With no stored hash (unknown user, password-less account) a dummy hash is checked so
        the answer takes as long as for a real user.
        """
        try:
            if stored is None:
                self.context.verify(password, self._dummy)
                return False, None
            ok, new_hash = self.context.verify_and_update(password, stored)
        except (ValueError, TypeError):
            return False, None
        return bool(ok), new_hash if ok else None

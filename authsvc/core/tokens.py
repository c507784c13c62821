"""Minting the registry's bearer JWT (``docs/spec/auth/jwt.md``). Pure: key and clock injected.

The header carries ``kid`` and, unless switched off, ``x5c`` with the signing certificate: every
registry version tries ``x5c`` first, and 2.8 falls back to the libtrust ``kid`` (PROTOCOL §1.6).

A token minted for a caller who logged in with an access token also carries that token's limit
in the private claim ``authsvc_limit`` (``{"actions": [...], "targets": [...]}``). The registry
ignores it (its access entries already hold no more than the limit allows); authsvc reads it
back when the token is sent to ``/v1/search`` or ``/v2/_catalog``, which list repositories and
so must stay within the limit too (``authsvc.core.token_verification``).
"""

import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import jwt

from authsvc.core.policy import TokenLimit
from authsvc.core.scopes import Scope
from authsvc.core.ttl_cache import TTLCache
from authsvc.pki.signing_keys import SigningKey

#: How far ``nbf`` is set back, for clients and registries whose clocks run a little behind.
NOT_BEFORE_SLACK = 5


@dataclass(frozen=True)
class IssuedToken:
    token: str
    issued_at: int
    expires_in: int

    @cached_property
    def issued_at_rfc3339(self) -> str:
        return datetime.fromtimestamp(self.issued_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def answer(self) -> dict[str, Any]:
        """The token endpoint's answer (PROTOCOL §1.3): ``token`` and its OAuth2 alias."""
        return {"token": self.token, "access_token": self.token,
                "expires_in": self.expires_in, "issued_at": self.issued_at_rfc3339}

    @cached_property
    def answer_json(self) -> bytes:
        """``answer`` as JSON, made once per token (a cached token is answered many times)."""
        return json.dumps(self.answer(), separators=(",", ":")).encode()

    def answer_json_with(self, fields: dict[str, str]) -> bytes:
        """``answer`` and ``fields`` (other names than its own) as JSON: ``answer_json`` with
        them added, the token not encoded again (it is most of the answer)."""
        if not fields:
            return self.answer_json
        return self.answer_json[:-1] + b"," + json.dumps(
            fields, separators=(",", ":")).encode()[1:]


def access_claim(grants: Sequence[tuple[Scope, frozenset[str]]]) -> list[dict[str, Any]]:
    """The ``access`` claim: one entry per requested resource, denied ones with no actions."""
    return [{"type": scope.type, "name": scope.name, "actions": sorted(actions)}
            for scope, actions in grants]


#: The private claim with an access token's limit.
LIMIT_CLAIM = "authsvc_limit"


def limit_claim(limit: TokenLimit) -> dict[str, list[str]]:
    """The ``authsvc_limit`` claim of ``limit``: its actions sorted, its targets in order."""
    return {"actions": sorted(limit.actions), "targets": list(limit.targets)}


LimitKey = tuple[tuple[str, ...], tuple[str, ...]] | None
CacheKey = tuple[str, str, tuple[tuple[str, str, tuple[str, ...]], ...], LimitKey]


class TokenIssuer:
    """Signs registry tokens with one key, for one issuer, with a fixed lifetime.

    With ``cache_seconds`` > 0, a request for exactly the same subject, audience, granted
    access and access-token limit within that many seconds of a signed token gets that token
    again (with its own ``issued_at``, so clients still see the right expiry) instead of a new
    signature. A password login and an access-token login of one user never share a token.
    """

    def __init__(
        self, key: SigningKey, issuer: str, ttl: int, *,
        include_x5c: bool = True, clock: Callable[[], float] = time.time,
        cache_seconds: int = 0, cache_size: int = 10_000,
    ) -> None:
        self.key = key
        self.issuer = issuer
        self.ttl = ttl
        self.clock = clock
        #: Signed tokens, each reused for ``cache_seconds`` from its ``issued_at``.
        self._cache: TTLCache[CacheKey, IssuedToken] = TTLCache(
            min(cache_seconds, ttl // 2), cache_size, clock)
        self._headers: dict[str, Any] = {"kid": key.kid}
        if include_x5c:
            self._headers["x5c"] = [key.x5c]

    def issue(
        self, subject: str | None, audience: str,
        grants: Sequence[tuple[Scope, frozenset[str]]], *, limit: TokenLimit | None = None,
    ) -> IssuedToken:
        """A token for ``subject`` ("" when anonymous) holding exactly ``grants``; with
        ``limit`` (an access-token login) the ``authsvc_limit`` claim too."""
        if not self._cache.enabled:
            return self._sign(subject, audience, grants, limit)
        limit_key: LimitKey = None if limit is None else (
            tuple(sorted(limit.actions)), limit.targets)
        key: CacheKey = (subject or "", audience, tuple(
            (scope.type, scope.name, tuple(sorted(actions))) for scope, actions in grants),
            limit_key)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        issued = self._sign(subject, audience, grants, limit)
        self._cache.put(key, issued, made_at=issued.issued_at)
        return issued

    def _sign(
        self, subject: str | None, audience: str,
        grants: Sequence[tuple[Scope, frozenset[str]]], limit: TokenLimit | None,
    ) -> IssuedToken:
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject or "",
            "aud": audience,
            "iat": now,
            "nbf": now - NOT_BEFORE_SLACK,
            "exp": now + self.ttl,
            "jti": secrets.token_urlsafe(16),
            "access": access_claim(grants),
        }
        if limit is not None:
            claims[LIMIT_CLAIM] = limit_claim(limit)
        token = jwt.encode(claims, self.key.private_key, algorithm=self.key.algorithm,
                           headers=self._headers)
        return IssuedToken(token, now, self.ttl)

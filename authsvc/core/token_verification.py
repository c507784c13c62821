"""Verifying authsvc's own registry JWTs, as the registry does (PROTOCOL §0 items 5–8). Pure.

Docker sends such a token to ``/v1/search`` (``Authorization: Bearer``) after the v2 token
flow for ``registry:catalog:search``, and podman to ``/v2/_catalog`` (which authsvc answers
behind nginx) after the flow for ``registry:catalog:*``. A token is good when it is signed by
one of the keys authsvc publishes (active, next and previous: ``authsvc.pki.key_set``) with
that key's own algorithm, names the configured issuer and one of the accepted services, and is
within ``nbf``/``exp`` (a few seconds of leeway). Keys and clock are injected.

A token minted for an access-token login carries the access token's limit (``authsvc_limit``,
``authsvc.core.tokens``): it comes back as ``VerifiedToken.limit``, for the listings to apply.
"""

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import jwt

from authsvc.core.policy import ALL, TokenLimit
from authsvc.core.scopes import Scope
from authsvc.core.tokens import LIMIT_CLAIM
from authsvc.errors import AuthenticationFailed
from authsvc.pki.certs import signing_public_key
from authsvc.pki.key_set import TrustedKey
from authsvc.pki.signing_keys import PublicKey

#: Seconds a token is still taken after its ``exp`` (and before its ``nbf``): clock skew
#: between authsvc replicas, not the registry's 60 s.
LEEWAY = 5
#: The claims every authsvc token carries and a verifier relies on.
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "access")


@dataclass(frozen=True)
class VerifiedToken:
    """What a good token says: its subject ("" for an anonymous token), its access entries,
    each a Scope with the granted actions, and the limit of the access token it was minted
    for (None for a password login or an anonymous token)."""

    subject: str
    access: tuple[Scope, ...]
    limit: TokenLimit | None = None

    def names(self, resource_type: str, name: str) -> bool:
        """Whether an entry of exactly (``resource_type``, ``name``) is there, whatever its
        actions (none included: the token was asked for that resource)."""
        return any(entry.type == resource_type and entry.name == name for entry in self.access)

    def holds(self, resource_type: str, name: str, action: str) -> bool:
        """Whether an entry of exactly (``resource_type``, ``name``) holds ``action``, or
        ``*``, which the registry takes for every action."""
        return any(entry.type == resource_type and entry.name == name
                   and (action in entry.actions or ALL in entry.actions)
                   for entry in self.access)


@dataclass(frozen=True)
class _Key:
    kid: str
    algorithm: str
    public_key: PublicKey


def _invalid(reason: str) -> AuthenticationFailed:
    return AuthenticationFailed(f"invalid bearer token: {reason}")


def _strings(value: Any) -> TypeGuard[list[str]]:
    """Whether ``value`` is a JSON list of strings."""
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _access_entries(claim: Any) -> tuple[Scope, ...]:
    """The ``access`` claim as Scopes; raises AuthenticationFailed when it is malformed."""
    if not isinstance(claim, list):
        raise _invalid("the access claim is not a list")
    entries = []
    for entry in claim:
        if not isinstance(entry, dict):
            raise _invalid("an access entry is not an object")
        kind, name, actions = entry.get("type"), entry.get("name"), entry.get("actions")
        if not isinstance(kind, str) or not isinstance(name, str) or not _strings(actions):
            raise _invalid("an access entry is malformed")
        entries.append(Scope(kind, name, frozenset(actions)))
    return tuple(entries)


def _limit(claims: dict[str, Any]) -> TokenLimit | None:
    """The ``authsvc_limit`` claim as a TokenLimit (None when absent); raises
    AuthenticationFailed when it is malformed (``null`` included: nothing is taken for no
    limit but its absence)."""
    if LIMIT_CLAIM not in claims:
        return None
    claim = claims[LIMIT_CLAIM]
    if (not isinstance(claim, dict) or set(claim) != {"actions", "targets"}
            or not _strings(claim["actions"]) or not _strings(claim["targets"])):
        raise _invalid(f"the {LIMIT_CLAIM} claim is malformed")
    return TokenLimit(frozenset(claim["actions"]), tuple(claim["targets"]))


def _whole_seconds(claims: dict[str, Any], name: str) -> int | None:
    """The integer claim ``name`` (None when absent); raises AuthenticationFailed for any
    other type (the registry decodes these as int64)."""
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(f"{name} is not a whole number")
    return value


class TokenVerifier:
    """Checks tokens against the published signing keys, one issuer and accepted audiences."""

    def __init__(self, keys: Iterable[TrustedKey], issuer: str, audiences: Sequence[str], *,
                 clock: Callable[[], float] = time.time, leeway: int = LEEWAY) -> None:
        self.keys = tuple(_Key(key.kid, key.algorithm, signing_public_key(key.certificate))
                          for key in keys)
        self.issuer = issuer
        self.audiences = list(audiences)
        self.clock = clock
        self.leeway = leeway

    def _candidates(self, token: str) -> list[_Key]:
        """The keys that may have signed ``token``: those of its header's algorithm, the one
        with its ``kid`` first. Raises AuthenticationFailed when none may."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise _invalid("malformed") from e
        algorithm, kid = header.get("alg"), header.get("kid")
        keys = [key for key in self.keys if key.algorithm == algorithm]
        if not keys:
            raise _invalid("not signed with an algorithm of the signing keys")
        return sorted(keys, key=lambda key: key.kid != kid)

    def _claims(self, token: str) -> dict[str, Any]:
        """The claims of ``token`` once a trusted key's signature, the issuer and the audience
        check out. Raises AuthenticationFailed."""
        error: jwt.PyJWTError | None = None
        for key in self._candidates(token):
            try:
                claims: dict[str, Any] = jwt.decode(
                    token, key.public_key, algorithms=[key.algorithm], audience=self.audiences,
                    issuer=self.issuer, options={
                        "require": list(REQUIRED_CLAIMS), "verify_exp": False,
                        "verify_nbf": False, "verify_iat": False})
                return claims
            except jwt.InvalidSignatureError as e:
                error = e  # another published key may have signed it
            except jwt.PyJWTError as e:
                raise _invalid(_reason(e)) from e
        raise _invalid("bad signature") from error

    def verify(self, token: str) -> VerifiedToken:
        """The subject, access entries and access-token limit of ``token``.

        Raises AuthenticationFailed when the token is malformed, not signed by a published key
        with its algorithm, names another issuer or no accepted audience, is expired or not yet
        valid (beyond the leeway), or its claims have the wrong types.
        """
        claims = self._claims(token)
        now = self.clock()
        expires = _whole_seconds(claims, "exp")
        not_before = _whole_seconds(claims, "nbf")
        if expires is None or now > expires + self.leeway:
            raise _invalid("expired")
        if not_before is not None and now < not_before - self.leeway:
            raise _invalid("not valid yet")
        subject = claims["sub"]
        if not isinstance(subject, str):
            raise _invalid("the subject is not a string")
        return VerifiedToken(subject, _access_entries(claims["access"]),
                             _limit(claims))


def _reason(error: jwt.PyJWTError) -> str:
    """A short reason for ``error`` that repeats nothing of the token."""
    if isinstance(error, jwt.InvalidIssuerError):
        return "wrong issuer"
    if isinstance(error, jwt.InvalidAudienceError):
        return "wrong audience"
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"no {error.claim} claim"
    if isinstance(error, jwt.InvalidAlgorithmError):
        return "algorithm not allowed"
    return "malformed"

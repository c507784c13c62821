"""Verifying authsvc's own JWTs (``authsvc.core.token_verification``): tokens minted by
``TokenIssuer`` with the published keys pass; expired, foreign, forged or garbled ones fail."""

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from authsvc.core.policy import TokenLimit
from authsvc.core.scopes import Scope
from authsvc.core.token_verification import LEEWAY, TokenVerifier, VerifiedToken
from authsvc.core.tokens import TokenIssuer
from authsvc.errors import AuthenticationFailed
from authsvc.pki.certs import CertPaths, KeyType, cert_pem, generate_key, make_signing_cert
from authsvc.pki.key_set import Role, TrustedKey, read_key_set
from authsvc.pki.signing_keys import SigningKey, load_signing_key

NOW = 1_800_000_000
TTL = 300
ISSUER = "authsvc"
SERVICES = ["registry", "mirror"]
SEARCH = Scope("registry", "catalog", frozenset({"search"}))
PULL = Scope("repository", "alice/app", frozenset({"pull"}))


def signing_key(key_type: KeyType = "ec") -> SigningKey:
    key = generate_key(key_type)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return load_signing_key(pem, cert_pem(make_signing_cert(key, datetime.now(UTC))),
                            now=datetime.now(UTC))


def trusted(key: SigningKey, role: Role = "active") -> TrustedKey:
    return TrustedKey(role, key.certificate, key.kid, key.algorithm)


ACTIVE, NEXT, RSA_PREVIOUS, STRANGER = (signing_key(), signing_key(), signing_key("rsa"),
                                        signing_key())
PUBLISHED = [trusted(ACTIVE), trusted(NEXT, "next"), trusted(RSA_PREVIOUS, "previous")]


def mint(key: SigningKey = ACTIVE, *, at: int = NOW, issuer: str = ISSUER,
         audience: str = "registry", subject: str | None = "alice",
         grants: tuple[tuple[Scope, frozenset[str]], ...] = ((SEARCH, SEARCH.actions),),
         x5c: bool = True, limit: TokenLimit | None = None) -> str:
    issuer_ = TokenIssuer(key, issuer, TTL, include_x5c=x5c, clock=lambda: float(at))
    return issuer_.issue(subject, audience, grants, limit=limit).token


def verifier(at: float = NOW, keys: list[TrustedKey] = PUBLISHED) -> TokenVerifier:
    return TokenVerifier(keys, ISSUER, SERVICES, clock=lambda: at)


def refused(token: str, at: float = NOW, keys: list[TrustedKey] = PUBLISHED) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        verifier(at, keys).verify(token)
    assert caught.value.status == 401
    return caught.value.message


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_good_token_gives_its_subject_and_access() -> None:
    token = mint(grants=((SEARCH, SEARCH.actions), (PULL, frozenset({"pull"}))))
    verified = verifier().verify(token)
    assert verified == VerifiedToken("alice", (SEARCH, PULL))
    assert verified.holds("registry", "catalog", "search")
    assert not verified.holds("registry", "catalog", "*")
    assert verified.holds("repository", "alice/app", "pull")
    assert not verified.holds("repository", "alice/app", "push")
    assert not verified.holds("repository", "alice/other", "pull")


def test_an_access_token_limit_comes_back() -> None:
    limit = TokenLimit(frozenset({"pull", "push"}), ("alice/app", "team/*"))
    verified = verifier().verify(mint(limit=limit))
    assert verified == VerifiedToken("alice", (SEARCH,), limit)
    assert verifier().verify(mint()).limit is None
    everywhere = TokenLimit(frozenset({"pull"}))
    assert verifier().verify(mint(limit=everywhere)).limit == everywhere


def test_names_an_entry_whatever_its_actions() -> None:
    catalog = Scope("registry", "catalog", frozenset({"*"}))
    verified = verifier().verify(mint(grants=((catalog, frozenset()), (PULL, PULL.actions))))
    assert verified.names("registry", "catalog")
    assert not verified.holds("registry", "catalog", "*")
    assert verified.names("repository", "alice/app")
    assert not verified.names("repository", "alice/other")
    assert not verifier().verify(mint(grants=((PULL, PULL.actions),))).names(
        "registry", "catalog")


def test_a_star_holds_every_action() -> None:
    catalog = Scope("registry", "catalog", frozenset({"*"}))
    verified = verifier().verify(mint(grants=((catalog, catalog.actions),)))
    assert verified.holds("registry", "catalog", "search")


def test_denied_entries_and_anonymous_tokens_verify_with_nothing_held() -> None:
    verified = verifier().verify(mint(subject=None, grants=((SEARCH, frozenset()),)))
    assert verified.subject == ""
    assert not verified.holds("registry", "catalog", "search")


@pytest.mark.parametrize("key", [ACTIVE, NEXT, RSA_PREVIOUS], ids=["active", "next", "previous"])
@pytest.mark.parametrize("x5c", [True, False], ids=["x5c", "kid-only"])
def test_every_published_key_counts(key: SigningKey, x5c: bool) -> None:
    assert verifier().verify(mint(key, x5c=x5c)).subject == "alice"


def test_a_token_whose_kid_names_another_published_key_still_verifies() -> None:
    header = {"alg": "ES256", "typ": "JWT", "kid": ACTIVE.kid}
    token = jwt.encode({"iss": ISSUER, "sub": "bob", "aud": "registry", "exp": NOW + 60,
                        "access": []}, NEXT.private_key, algorithm="ES256", headers=header)
    assert verifier().verify(token).subject == "bob"


@pytest.mark.parametrize("audience", SERVICES)
def test_every_accepted_audience(audience: str) -> None:
    assert verifier().verify(mint(audience=audience)).subject == "alice"


@pytest.mark.parametrize(("at", "good"), [
    (NOW - LEEWAY - 6, False),  # before nbf (now - 5) beyond the leeway
    (NOW - LEEWAY - 5, True),
    (NOW, True),
    (NOW + TTL + LEEWAY, True),
    (NOW + TTL + LEEWAY + 1, False),
    (NOW + 86400, False),
])
def test_validity_window_with_a_few_seconds_of_leeway(at: int, good: bool) -> None:
    token = mint()
    if good:
        assert verifier(at).verify(token).subject == "alice"
    else:
        assert refused(token, at) in ("invalid bearer token: expired",
                                      "invalid bearer token: not valid yet")


@pytest.mark.parametrize(("make", "reason"), [
    (lambda: mint(audience="elsewhere"), "wrong audience"),
    (lambda: mint(issuer="someone-else"), "wrong issuer"),
    (lambda: mint(STRANGER), "bad signature"),
    (lambda: mint(STRANGER, x5c=False), "bad signature"),
    (lambda: "not a token", "malformed"),
    (lambda: "", "malformed"),
    (lambda: "a.b.c", "malformed"),
    (lambda: mint()[:-4] + "AAAA", "bad signature"),
], ids=["audience", "issuer", "other-key", "other-key-kid-only", "garbage", "empty",
        "three-parts", "tampered-signature"])
def test_bad_tokens_are_refused(make: Callable[[], str], reason: str) -> None:
    assert refused(make()) == f"invalid bearer token: {reason}"


def test_alg_none_is_refused() -> None:
    claims = {"iss": ISSUER, "sub": "root", "aud": "registry", "exp": NOW + 60,
              "access": [{"type": "registry", "name": "catalog", "actions": ["*"]}]}
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    assert "algorithm" in refused(unsigned)
    assert "algorithm" in refused(jwt.encode(claims, None, algorithm="none"))


def test_only_the_algorithms_of_the_published_keys() -> None:
    """An HS256 token "signed" with a public key's bytes (the classic confusion) and an
    RS256 token when no RSA key is published are refused."""
    claims = {"iss": ISSUER, "sub": "root", "aud": "registry", "exp": NOW + 60, "access": []}
    public_pem = ACTIVE.certificate.public_bytes(serialization.Encoding.PEM)
    forged = f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(claims)}.{b64(public_pem[:32])}"
    assert "algorithm" in refused(forged)
    assert "algorithm" in refused(mint(RSA_PREVIOUS), keys=[trusted(ACTIVE)])


@pytest.mark.parametrize(("claims", "reason"), [
    ({"sub": "a", "aud": "registry", "exp": NOW + 60, "access": []}, "no iss claim"),
    ({"iss": ISSUER, "aud": "registry", "exp": NOW + 60, "access": []}, "no sub claim"),
    ({"iss": ISSUER, "sub": "a", "exp": NOW + 60, "access": []}, "no aud claim"),
    ({"iss": ISSUER, "sub": "a", "aud": "registry", "access": []}, "no exp claim"),
    ({"iss": ISSUER, "sub": "a", "aud": "registry", "exp": NOW + 60}, "no access claim"),
    ({"iss": ISSUER, "sub": "a", "aud": "registry", "exp": NOW + 60.5, "access": []},
     "exp is not a whole number"),
    ({"iss": ISSUER, "sub": "a", "aud": "registry", "exp": NOW + 60, "nbf": "0",
      "access": []}, "nbf is not a whole number"),
    ({"iss": ISSUER, "sub": "a", "aud": "registry", "exp": NOW + 60, "access": {}},
     "the access claim is not a list"),
    ({"iss": ISSUER, "sub": "a", "aud": "registry", "exp": NOW + 60, "access": ["x"]},
     "an access entry is not an object"),
    ({"iss": ISSUER, "sub": "a", "aud": "registry", "exp": NOW + 60,
      "access": [{"type": "registry", "name": "catalog", "actions": "search"}]},
     "an access entry is malformed"),
    *[({"iss": ISSUER, "sub": "a", "aud": "registry", "exp": NOW + 60, "access": [],
        "authsvc_limit": limit}, "the authsvc_limit claim is malformed") for limit in (
        None, [], "pull", {"actions": ["pull"]}, {"targets": []},
        {"actions": "pull", "targets": []}, {"actions": ["pull"], "targets": "alice/*"},
        {"actions": [1], "targets": []}, {"actions": ["pull"], "targets": [None]},
        {"actions": ["pull"], "targets": [], "more": 1})],
])
def test_malformed_claims_signed_by_a_published_key_are_refused(
        claims: dict[str, Any], reason: str) -> None:
    token = jwt.encode(claims, ACTIVE.private_key, algorithm="ES256",
                       headers={"kid": ACTIVE.kid})
    assert refused(token) == f"invalid bearer token: {reason}"


def test_keys_read_from_the_certificate_folder(certs_dir: Path) -> None:
    """What ``read_key_set`` publishes verifies what authsvc's own signing key signs."""
    paths = CertPaths(certs_dir)
    key = load_signing_key(paths.signing_key.read_bytes(), paths.signing.read_bytes())
    published = list(read_key_set(paths, "libtrust").keys)
    assert verifier(keys=published).verify(mint(key)).subject == "alice"
    assert refused(mint(STRANGER), keys=published) == "invalid bearer token: bad signature"

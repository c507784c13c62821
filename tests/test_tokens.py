"""Token minting: key ids the registry derives, signing-key loading, and the JWT it accepts."""

import base64
import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from authsvc.core.policy import TokenLimit
from authsvc.core.scopes import Scope
from authsvc.core.tokens import IssuedToken, TokenIssuer
from authsvc.errors import CertificateError
from authsvc.pki.signing_keys import (
    SigningKey,
    algorithm_for,
    jwk_thumbprint,
    jwks_document,
    key_id,
    libtrust_key_id,
    load_signing_key,
    public_jwk,
)

ISSUER = "authsvc.example"
SERVICE = "registry.example:5000"


def _b64url_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# The example ES256 key of distribution's docs/spec/auth/jwt.md and the kid printed next to it.
SPEC_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "kid": "PYYO:TEWU:V7JH:26JV:AQTZ:LJC3:SXVJ:XGHA:34F2:2LAQ:ZRMK:Z7Q6",
    "d": "R7OnbfMaD5J2jl7GeE8ESo7CnHSBm_1N2k9IXYFrKJA",
    "x": "m7zUpx3b-zmVE5cymSs64POG9QcyEpJaYCD82-549_Q",
    "y": "dU3biz8sZ_8GPB-odm8Wxz3lNDr1xcAQQPQaOcr1fmc",
}

# RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPeb"
    "WKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQ"
    "MicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2N"
    "cRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

# distribution 3.0.x gave every P-256 key this kid (the generator's thumbprint): ours must not.
GENERATOR_KID = "xx0BcA-wMohw8atYDJOe6peGModklG2wRHBlXHMvl0M"


def strict_rfc7638(public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 from PyJWT's JWK export (fixed-width EC coordinates), not from authsvc."""
    if isinstance(public_key, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
        members = {k: jwk[k] for k in ("e", "kty", "n")}
    else:
        jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
        members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64url(hashlib.sha256(canonical).digest())


def make_cert(key, *, not_before: datetime | None = None, not_after: datetime | None = None,
              public_key=None) -> x509.Certificate:
    """A self-signed certificate for ``public_key`` (default: ``key``'s), signed by ``key``."""
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test signing")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(public_key or key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - timedelta(days=1))
            .not_valid_after(not_after or now + timedelta(days=30))
            .sign(key, hashes.SHA256()))


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_signing(ec_key) -> SigningKey:
    return load_signing_key(key_pem(ec_key), cert_pem(make_cert(ec_key)))


@pytest.fixture(scope="module")
def rsa_signing(rsa_key) -> SigningKey:
    return load_signing_key(key_pem(rsa_key), cert_pem(make_cert(rsa_key)))


# -- key ids -------------------------------------------------------------------------------------

def test_libtrust_kid_of_the_spec_example_key() -> None:
    public = ec.EllipticCurvePublicNumbers(
        _b64url_int(SPEC_JWK["x"]), _b64url_int(SPEC_JWK["y"]), ec.SECP256R1()).public_key()
    assert libtrust_key_id(public) == SPEC_JWK["kid"]
    assert key_id(public, "libtrust") == SPEC_JWK["kid"]


def test_spec_example_private_key_signs_with_the_spec_kid() -> None:
    private = ec.derive_private_key(_b64url_int(SPEC_JWK["d"]), ec.SECP256R1())
    signing = load_signing_key(key_pem(private), cert_pem(make_cert(private)))
    assert signing.kid == SPEC_JWK["kid"]
    assert signing.algorithm == "ES256"


@pytest.mark.parametrize("make_key", [
    lambda: ec.generate_private_key(ec.SECP256R1()),
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
], ids=["ec", "rsa"])
def test_libtrust_kid_shape(make_key) -> None:
    kid = libtrust_key_id(make_key().public_key())
    groups = kid.split(":")
    assert len(groups) == 12
    assert all(len(g) == 4 for g in groups)
    assert set(kid) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567:")


@pytest.mark.parametrize("kid_format", ["libtrust", "jwk-thumbprint"])
@pytest.mark.parametrize("curve_or_rsa", ["ec", "rsa"])
def test_two_keys_give_two_kids(kid_format, curve_or_rsa) -> None:
    def new():
        if curve_or_rsa == "ec":
            return ec.generate_private_key(ec.SECP256R1()).public_key()
        return rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()

    first, second = new(), new()
    assert key_id(first, kid_format) != key_id(second, kid_format)
    assert key_id(first, kid_format) == key_id(first, kid_format)
    if curve_or_rsa == "ec" and kid_format == "jwk-thumbprint":
        assert GENERATOR_KID not in {key_id(first, kid_format), key_id(second, kid_format)}


def test_libtrust_and_thumbprint_formats_differ(ec_key) -> None:
    public = ec_key.public_key()
    assert key_id(public, "libtrust") == libtrust_key_id(public)
    assert key_id(public, "jwk-thumbprint") == jwk_thumbprint(public)
    assert libtrust_key_id(public) != jwk_thumbprint(public)


def test_rsa_thumbprint_matches_rfc7638_example() -> None:
    public = rsa.RSAPublicNumbers(65537, _b64url_int(RFC7638_N)).public_key()
    assert jwk_thumbprint(public) == RFC7638_THUMBPRINT


def test_rsa_thumbprint_is_strict_rfc7638(rsa_key) -> None:
    assert jwk_thumbprint(rsa_key.public_key()) == strict_rfc7638(rsa_key.public_key())


def _p256_key_with_short_x() -> ec.EllipticCurvePublicKey:
    """A P-256 key whose x has a leading zero byte (about 1 in 256 keys), found in a bounded,
    deterministic search over small private scalars."""
    for d in range(1, 5000):
        public = ec.derive_private_key(d, ec.SECP256R1()).public_key()
        if public.public_numbers().x < 2**248:
            return public
    raise AssertionError("no P-256 key with a leading zero byte in x among 5000 candidates")


def test_ec_thumbprint_uses_minimal_length_coordinates() -> None:
    public = _p256_key_with_short_x()
    numbers = public.public_numbers()
    x = numbers.x.to_bytes((numbers.x.bit_length() + 7) // 8, "big")
    y = numbers.y.to_bytes((numbers.y.bit_length() + 7) // 8, "big")
    assert len(x) < 32
    members = {"crv": "P-256", "kty": "EC", "x": _b64url(x), "y": _b64url(y)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    expected = _b64url(hashlib.sha256(canonical).digest())

    assert jwk_thumbprint(public) == expected  # what distribution 3.1 computes
    assert jwk_thumbprint(public) != strict_rfc7638(public)


def test_ec_thumbprint_equals_rfc7638_for_full_width_coordinates() -> None:
    public = ec.EllipticCurvePublicNumbers(
        _b64url_int(SPEC_JWK["x"]), _b64url_int(SPEC_JWK["y"]), ec.SECP256R1()).public_key()
    assert public.public_numbers().x >= 2**248 and public.public_numbers().y >= 2**248
    assert jwk_thumbprint(public) == strict_rfc7638(public)


# -- loading the signing key ----------------------------------------------------------------------

def test_load_signing_key_derives_everything(ec_key) -> None:
    cert = make_cert(ec_key)
    signing = load_signing_key(key_pem(ec_key), cert_pem(cert), "jwk-thumbprint")
    assert signing.algorithm == "ES256"
    assert signing.kid == jwk_thumbprint(ec_key.public_key())
    assert base64.b64decode(signing.x5c, validate=True) == cert.public_bytes(
        serialization.Encoding.DER)
    assert signing.certificate == cert


def test_public_jwk_verifies_issued_tokens(ec_signing) -> None:
    jwk = ec_signing.public_jwk
    assert jwk["kid"] == ec_signing.kid
    assert jwk["alg"] == "ES256"
    assert "d" not in jwk
    token = TokenIssuer(ec_signing, ISSUER, 300).issue("alice", SERVICE, []).token
    verifier = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, verifier, algorithms=["ES256"], audience=SERVICE, issuer=ISSUER)
    assert claims["sub"] == "alice"


# -- JWKS ----------------------------------------------------------------------------------------

def test_jwk_ec_coordinates_are_full_width_even_when_the_thumbprint_is_not() -> None:
    """go-jose (distribution 3.x reading its jwks file) refuses a short x or y, while the
    thumbprint distribution computes hashes the minimal bytes: the two must differ here."""
    public = _p256_key_with_short_x()
    jwk = public_jwk(public, "k1")
    x = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
    y = base64.urlsafe_b64decode(jwk["y"] + "=" * (-len(jwk["y"]) % 4))
    assert len(x) == len(y) == 32
    assert x[0] == 0
    assert jwk == {**ECAlgorithm.to_jwk(public, as_dict=True), "kid": "k1", "alg": "ES256",
                   "use": "sig"}
    assert jwt.PyJWK(jwk).key.public_numbers() == public.public_numbers()


def test_rsa_jwk_round_trips(rsa_key) -> None:
    jwk = public_jwk(rsa_key.public_key(), "k2")
    assert jwk["kty"] == "RSA" and jwk["alg"] == "RS256" and jwk["use"] == "sig"
    assert "d" not in jwk and "p" not in jwk
    assert jwt.PyJWK(jwk).key.public_numbers() == rsa_key.public_key().public_numbers()


@pytest.mark.parametrize("kid_format", ["libtrust", "jwk-thumbprint"])
def test_jwks_document_lists_every_key_under_its_kid(ec_key, rsa_key, kid_format) -> None:
    keys = [ec_key.public_key(), rsa_key.public_key()]
    document = jwks_document(keys, kid_format)
    assert [k["kid"] for k in document["keys"]] == [key_id(k, kid_format) for k in keys]
    assert [k["alg"] for k in document["keys"]] == ["ES256", "RS256"]
    assert len({k["kid"] for k in document["keys"]}) == 2
    json.dumps(document)  # plain JSON


def test_token_verifies_with_the_jwks_entry_its_kid_names(ec_signing, rsa_signing) -> None:
    """What distribution 3.x does with a jwks file: look the key up by ``kid``, verify."""
    document = jwks_document([ec_signing.private_key.public_key(),
                              rsa_signing.private_key.public_key()], "libtrust")
    by_kid = {k["kid"]: jwt.PyJWK(k) for k in document["keys"]}
    for signing in (ec_signing, rsa_signing):
        token = TokenIssuer(signing, ISSUER, 300, include_x5c=False).issue(
            "alice", SERVICE, []).token
        verifier = by_kid[jwt.get_unverified_header(token)["kid"]]
        jwt.decode(token, verifier.key, algorithms=[signing.algorithm], audience=SERVICE,
                   issuer=ISSUER)


@pytest.mark.parametrize(
    ("make_key", "algorithm"),
    [(lambda: ec.generate_private_key(ec.SECP256R1()), "ES256"),
     (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")],
    ids=["ec", "rsa"],
)
def test_algorithm_for_private_and_public_halves(make_key, algorithm) -> None:
    key = make_key()
    assert algorithm_for(key) == algorithm_for(key.public_key()) == algorithm


@pytest.mark.parametrize(
    "make_key",
    [lambda: ec.generate_private_key(ec.SECP384R1()),
     lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505
     ed25519.Ed25519PrivateKey.generate],
    ids=["p384", "rsa1024", "ed25519"],
)
def test_jwks_refuses_keys_authsvc_does_not_sign_with(make_key) -> None:
    public = make_key().public_key()
    with pytest.raises(CertificateError):
        algorithm_for(public)
    with pytest.raises(CertificateError):
        public_jwk(public, "kid")


@pytest.mark.parametrize(
    ("not_before", "not_after"),
    [
        (timedelta(days=-30), timedelta(days=-1)),   # expired
        (timedelta(days=1), timedelta(days=30)),     # not yet valid
    ],
    ids=["expired", "not-yet-valid"],
)
def test_load_signing_key_refuses_cert_outside_validity(ec_key, not_before, not_after) -> None:
    now = datetime.now(UTC)
    cert = make_cert(ec_key, not_before=now + not_before, not_after=now + not_after)
    with pytest.raises(CertificateError):
        load_signing_key(key_pem(ec_key), cert_pem(cert))


def test_load_signing_key_uses_injected_now(ec_key) -> None:
    now = datetime.now(UTC)
    cert = cert_pem(make_cert(ec_key, not_before=now - timedelta(days=10),
                              not_after=now + timedelta(days=10)))
    load_signing_key(key_pem(ec_key), cert, now=now)
    with pytest.raises(CertificateError):
        load_signing_key(key_pem(ec_key), cert, now=now + timedelta(days=11))
    with pytest.raises(CertificateError):
        load_signing_key(key_pem(ec_key), cert, now=now - timedelta(days=11))


def test_load_signing_key_refuses_mismatched_cert(ec_key) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CertificateError):
        load_signing_key(key_pem(ec_key), cert_pem(make_cert(other)))
    # a cert for another key, even when signed by ours
    with pytest.raises(CertificateError):
        load_signing_key(key_pem(ec_key),
                         cert_pem(make_cert(ec_key, public_key=other.public_key())))


def test_load_signing_key_refuses_encrypted_key(ec_key) -> None:
    encrypted = ec_key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.BestAvailableEncryption(b"passphrase"))
    with pytest.raises(CertificateError):
        load_signing_key(encrypted, cert_pem(make_cert(ec_key)))


@pytest.mark.parametrize(
    "make_key",
    [
        lambda: ec.generate_private_key(ec.SECP384R1()),
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505
        ed25519.Ed25519PrivateKey.generate,
    ],
    ids=["p384", "rsa1024", "ed25519"],
)
def test_load_signing_key_refuses_unsupported_keys(make_key) -> None:
    key = make_key()
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .sign(key, algorithm))
    with pytest.raises(CertificateError):
        load_signing_key(key_pem(key), cert_pem(cert))


@pytest.mark.parametrize("which", ["key", "cert", "swapped"])
def test_load_signing_key_refuses_garbage(ec_key, which) -> None:
    good_key, good_cert = key_pem(ec_key), cert_pem(make_cert(ec_key))
    pair = {"key": (b"not a key", good_cert), "cert": (good_key, b"not a cert"),
            "swapped": (good_cert, good_key)}[which]
    with pytest.raises(CertificateError):
        load_signing_key(*pair)


# -- issuing tokens -------------------------------------------------------------------------------

def _segment(token: str, index: int) -> dict:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


GRANTS = [
    (Scope("repository", "alice/app", frozenset({"pull", "push"})), frozenset({"push", "pull"})),
    (Scope("repository", "bob/secret", frozenset({"pull"})), frozenset()),
    (Scope("registry", "catalog", frozenset({"*"})), frozenset({"*"})),
    (Scope("repository", "myreg:5000/alice/app", frozenset({"pull"}), "plugin"),
     frozenset({"pull"})),
]


def test_issued_token_verifies_and_has_the_registry_claims(ec_signing) -> None:
    now = int(time.time())
    issuer = TokenIssuer(ec_signing, ISSUER, 600, clock=lambda: now + 0.75)
    issued = issuer.issue("alice", SERVICE, GRANTS)

    claims = jwt.decode(issued.token, ec_signing.private_key.public_key(), algorithms=["ES256"],
                        audience=SERVICE, issuer=ISSUER)
    assert claims["iss"] == ISSUER
    assert claims["aud"] == SERVICE  # a string: registry 2.8 refuses an array
    assert claims["sub"] == "alice"
    assert claims["iat"] == now
    assert claims["exp"] - claims["iat"] == 600
    assert claims["nbf"] < claims["iat"]
    assert claims["access"] == [
        {"type": "repository", "name": "alice/app", "actions": ["pull", "push"]},
        {"type": "repository", "name": "bob/secret", "actions": []},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
        {"type": "repository", "name": "myreg:5000/alice/app", "actions": ["pull"]},
    ]
    assert issued.issued_at == now
    assert issued.expires_in == 600


def test_answer_with_more_fields_is_the_answer_and_them(ec_signing) -> None:
    issued = TokenIssuer(ec_signing, ISSUER, 300).issue("alice", SERVICE, GRANTS)
    fields = {"scope": "repository:alice/app:pull", "refresh_token": 'a"b\\c\u2028é'}

    body = issued.answer_json_with(fields)

    assert json.loads(body) == {**issued.answer(), **fields}
    assert body == json.dumps({**issued.answer(), **fields}, separators=(",", ":")).encode()
    assert issued.answer_json_with({}) == issued.answer_json


def test_an_access_token_limit_is_a_private_claim(ec_signing) -> None:
    limit = TokenLimit(frozenset({"push", "pull"}), ("alice/app", "team/*"))
    issued = TokenIssuer(ec_signing, ISSUER, 300).issue("alice", SERVICE, GRANTS[:1],
                                                        limit=limit)
    claims = _segment(issued.token, 1)
    assert claims["authsvc_limit"] == {"actions": ["pull", "push"],
                                       "targets": ["alice/app", "team/*"]}
    plain = _segment(TokenIssuer(ec_signing, ISSUER, 300).issue("alice", SERVICE, []).token, 1)
    assert "authsvc_limit" not in plain


def test_time_claims_are_json_integers(ec_signing) -> None:
    token = TokenIssuer(ec_signing, ISSUER, 300, clock=lambda: 1_700_000_000.9).issue(
        "alice", SERVICE, []).token
    payload = _segment(token, 1)
    for claim in ("iat", "nbf", "exp"):
        assert type(payload[claim]) is int, claim
    assert payload["iat"] == 1_700_000_000
    assert payload["exp"] == 1_700_000_300
    assert isinstance(payload["jti"], str) and payload["jti"]


def test_header_has_typ_alg_kid_and_x5c(ec_signing) -> None:
    token = TokenIssuer(ec_signing, ISSUER, 300).issue("alice", SERVICE, []).token
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "JWT"
    assert header["alg"] == "ES256"
    assert header["kid"] == ec_signing.kid
    assert header["kid"] == libtrust_key_id(ec_signing.private_key.public_key())
    # standard base64 (with padding) of the DER certificate, not base64url
    der = ec_signing.certificate.public_bytes(serialization.Encoding.DER)
    assert header["x5c"] == [base64.b64encode(der).decode("ascii")]
    der = base64.b64decode(header["x5c"][0], validate=True)
    assert x509.load_der_x509_certificate(der) == ec_signing.certificate


def test_es256_signature_is_raw_r_s(ec_signing) -> None:
    token = TokenIssuer(ec_signing, ISSUER, 300).issue("alice", SERVICE, []).token
    signature = token.split(".")[2]
    assert len(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))) == 64


def test_x5c_can_be_switched_off(ec_signing) -> None:
    token = TokenIssuer(ec_signing, ISSUER, 300, include_x5c=False).issue(
        "alice", SERVICE, []).token
    header = jwt.get_unverified_header(token)
    assert "x5c" not in header
    assert header["kid"] == ec_signing.kid


def test_jti_is_unique(ec_signing) -> None:
    issuer = TokenIssuer(ec_signing, ISSUER, 300, clock=lambda: 1_700_000_000)
    first = _segment(issuer.issue("alice", SERVICE, GRANTS).token, 1)
    second = _segment(issuer.issue("alice", SERVICE, GRANTS).token, 1)
    assert first["jti"] != second["jti"]


@pytest.mark.parametrize("subject", [None, ""])
def test_anonymous_subject_is_empty_string(ec_signing, subject) -> None:
    token = TokenIssuer(ec_signing, ISSUER, 300).issue(subject, SERVICE, []).token
    claims = jwt.decode(token, ec_signing.private_key.public_key(), algorithms=["ES256"],
                        audience=SERVICE, issuer=ISSUER)
    assert claims["sub"] == ""
    assert claims["access"] == []


def test_rs256_with_rsa_key(rsa_signing) -> None:
    assert rsa_signing.algorithm == "RS256"
    token = TokenIssuer(rsa_signing, ISSUER, 300).issue("alice", SERVICE, GRANTS[:1]).token
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, rsa_signing.private_key.public_key(), algorithms=["RS256"],
                        audience=SERVICE, issuer=ISSUER)
    assert claims["access"] == [
        {"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}]


@pytest.mark.parametrize(
    ("audience", "issuer"),
    [("other-registry", ISSUER), (SERVICE, "someone-else")],
)
def test_token_is_refused_for_another_audience_or_issuer(ec_signing, audience, issuer) -> None:
    token = TokenIssuer(ec_signing, ISSUER, 300).issue("alice", SERVICE, []).token
    with pytest.raises(jwt.InvalidTokenError):
        jwt.decode(token, ec_signing.private_key.public_key(), algorithms=["ES256"],
                   audience=audience, issuer=issuer)


def test_token_expires_after_ttl(ec_signing) -> None:
    past = time.time() - 1000
    token = TokenIssuer(ec_signing, ISSUER, 300, clock=lambda: past).issue(
        "alice", SERVICE, []).token
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, ec_signing.private_key.public_key(), algorithms=["ES256"],
                   audience=SERVICE, issuer=ISSUER)


def test_token_signed_by_another_key_does_not_verify(ec_signing) -> None:
    token = TokenIssuer(ec_signing, ISSUER, 300).issue("alice", SERVICE, []).token
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other, algorithms=["ES256"], audience=SERVICE, issuer=ISSUER)


@pytest.mark.parametrize(
    ("issued_at", "text"),
    [(0, "1970-01-01T00:00:00Z"), (1_700_000_000, "2023-11-14T22:13:20Z")],
)
def test_issued_at_is_rfc3339_utc(issued_at: int, text: str) -> None:
    assert IssuedToken("t", issued_at, 300).issued_at_rfc3339 == text
    assert datetime.fromisoformat(text).tzinfo is not None


class TestTokenCache:
    """Identical requests within the cache window reuse one signature; anything else signs."""

    @pytest.fixture(autouse=True)
    def _key(self, ec_signing: SigningKey) -> None:
        self.key = ec_signing

    def issuer(self, clock: list[float], cache_seconds: int = 5) -> TokenIssuer:
        return TokenIssuer(self.key, "authsvc", 900, clock=lambda: clock[0],
                           cache_seconds=cache_seconds)

    def test_same_subject_service_and_access_reuse_the_token_within_the_window(self) -> None:
        clock = [1_000_000.0]
        issuer = self.issuer(clock)
        pull = [(Scope("repository", "alice/a", frozenset({"pull"})), frozenset({"pull"}))]
        first = issuer.issue("alice", "registry", pull)
        clock[0] += 4
        again = issuer.issue("alice", "registry", pull)
        assert again == first and again.issued_at == 1_000_000
        clock[0] += 1
        assert issuer.issue("alice", "registry", pull).token != first.token

    def test_any_difference_signs_a_new_token(self) -> None:
        clock = [1_000_000.0]
        issuer = self.issuer(clock)
        scope = Scope("repository", "alice/a", frozenset({"pull", "push"}))
        first = issuer.issue("alice", "registry", [(scope, frozenset({"pull", "push"}))])
        others = [
            issuer.issue("bob", "registry", [(scope, frozenset({"pull", "push"}))]),
            issuer.issue("alice", "other", [(scope, frozenset({"pull", "push"}))]),
            issuer.issue("alice", "registry", [(scope, frozenset({"pull"}))]),
            issuer.issue(None, "registry", [(scope, frozenset({"pull", "push"}))]),
        ]
        assert len({first.token, *(o.token for o in others)}) == 5

    def test_an_access_token_limit_is_part_of_the_key(self) -> None:
        """A password login and access-token logins of one user, with the same grants, get
        tokens of their own; the same limit again gets its cached token."""
        clock = [1_000_000.0]
        issuer = self.issuer(clock)
        pull = [(Scope("registry", "catalog", frozenset({"search"})), frozenset({"search"}))]
        read = TokenLimit(frozenset({"pull"}), ("alice/a",))
        by_password = issuer.issue("alice", "registry", pull)
        by_token = issuer.issue("alice", "registry", pull, limit=read)
        others = [
            issuer.issue("alice", "registry", pull, limit=TokenLimit(frozenset({"pull"}))),
            issuer.issue("alice", "registry", pull,
                         limit=TokenLimit(frozenset({"pull", "push"}), ("alice/a",))),
            issuer.issue("alice", "registry", pull, limit=TokenLimit(frozenset({"pull"}),
                                                                     ("alice/b",))),
        ]
        assert len({by_password.token, by_token.token, *(o.token for o in others)}) == 5
        assert issuer.issue("alice", "registry", pull) == by_password
        again = issuer.issue("alice", "registry", pull,
                             limit=TokenLimit(frozenset({"pull"}), ("alice/a",)))
        assert again == by_token
        assert "authsvc_limit" not in _segment(by_password.token, 1)
        assert _segment(by_token.token, 1)["authsvc_limit"]["targets"] == ["alice/a"]

    def test_zero_turns_the_cache_off(self) -> None:
        clock = [1_000_000.0]
        issuer = self.issuer(clock, cache_seconds=0)
        assert issuer.issue("alice", "registry", []).token != issuer.issue(
            "alice", "registry", []).token

"""The token-signing key: loading it with its certificate, the algorithm it signs with, and
the key ids and JWK documents the registry finds it by (libtrust fingerprints for 2.8, JWK
thumbprints for 3.x; PROTOCOL §1.6). Pure of Flask and the database."""

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from authsvc.errors import CertificateError

KidFormat = Literal["libtrust", "jwk-thumbprint"]
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(value: int) -> bytes:
    """Minimal big-endian bytes, as Go's ``big.Int.Bytes()`` gives them."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def libtrust_key_id(public_key: PublicKey) -> str:
    """The libtrust fingerprint that registry 2.8 maps bundle certificates to.

    SHA-256 of the DER SubjectPublicKeyInfo, first 30 bytes, base32, 12 groups of 4 joined by ``:``.
    """
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii").rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def _jwk_members(public_key: PublicKey, *, fixed_width: bool) -> dict[str, str]:
    """The required JWK members. EC coordinates are either minimal-length bytes (what
    distribution hashes for its thumbprint) or full curve width (RFC 7518 §6.2.1.2, which
    go-jose insists on when it reads a JWKS)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        return {"e": _b64url(_int_bytes(numbers.e)), "kty": "RSA",
                "n": _b64url(_int_bytes(numbers.n))}
    point = public_key.public_numbers()
    width = (public_key.curve.key_size + 7) // 8

    def coordinate(value: int) -> str:
        return _b64url(value.to_bytes(width, "big") if fixed_width else _int_bytes(value))

    return {"crv": _CURVES[public_key.curve.name], "kty": "EC", "x": coordinate(point.x),
            "y": coordinate(point.y)}


def jwk_thumbprint(public_key: PublicKey) -> str:
    """The key id registry 3.1 derives for a ``rootcertbundle`` certificate.

    RFC 7638 thumbprint, except that EC coordinates are minimal-length bytes as in distribution.
    """
    members = _jwk_members(public_key, fixed_width=False)
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def key_id(public_key: PublicKey, kid_format: KidFormat) -> str:
    return libtrust_key_id(public_key) if kid_format == "libtrust" else jwk_thumbprint(public_key)


def algorithm_for(key: PrivateKey | PublicKey) -> str:
    """RS256 for RSA ≥ 2048 bits, ES256 for P-256: the two every registry version accepts.

    Takes the private key or its public half. Raises CertificateError for any other key.
    """
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise CertificateError("the token-signing RSA key must have at least 2048 bits")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and (
            key.curve.name == "secp256r1"):
        return "ES256"
    raise CertificateError("the token-signing key must be RSA (≥ 2048 bits) or EC P-256")


def public_jwk(public_key: PublicKey, kid: str) -> dict[str, str]:
    """``public_key`` as a JWK (RFC 7517) for signature checks, under ``kid``.

    Raises CertificateError for a key authsvc does not sign with (see ``algorithm_for``).
    """
    algorithm = algorithm_for(public_key)
    return {**_jwk_members(public_key, fixed_width=True), "kid": kid, "alg": algorithm,
            "use": "sig"}


def jwks_document(public_keys: Sequence[PublicKey], kid_format: KidFormat) -> dict[str, Any]:
    """A JWK Set listing ``public_keys``, each under its ``kid`` in ``kid_format``.

    This is what distribution 3.x reads from its ``auth.token.jwks`` file: it trusts every key
    under its ``kid``, so tokens must carry the same ``kid`` (the same KID_FORMAT).
    """
    return {"keys": [public_jwk(key, key_id(key, kid_format)) for key in public_keys]}


@dataclass(frozen=True)
class SigningKey:
    """A loaded token-signing key with everything derived from it computed once."""

    private_key: PrivateKey
    certificate: x509.Certificate
    algorithm: str
    kid: str
    x5c: str

    @property
    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK with this key's ``kid``, for a JWKS document."""
        return public_jwk(self.private_key.public_key(), self.kid)


def load_signing_key(
    key_pem: bytes, cert_pem: bytes, kid_format: KidFormat = "libtrust",
    now: datetime | None = None,
) -> SigningKey:
    """Load a PEM private key and its certificate. Raises CertificateError when unusable.

    The certificate must hold the key's public half and be within its validity period: the
    registry checks both for ``x5c`` tokens and would refuse every token otherwise.
    """
    try:
        private_key = serialization.load_pem_private_key(key_pem, password=None)
        certificate = x509.load_pem_x509_certificate(cert_pem)
    except (ValueError, TypeError) as e:  # TypeError: an encrypted key
        raise CertificateError(f"cannot read the token-signing key or certificate: {e}") from e
    if not isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CertificateError("the token-signing key must be RSA or EC")
    algorithm = algorithm_for(private_key)
    if certificate.public_key() != private_key.public_key():
        raise CertificateError("the token-signing certificate does not match the signing key")
    moment = now or datetime.now(UTC)
    if not certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc:
        raise CertificateError(
            "the token-signing certificate is not valid now "
            f"(valid {certificate.not_valid_before_utc:%Y-%m-%d} to "
            f"{certificate.not_valid_after_utc:%Y-%m-%d}); run `authsvc certs init --force`"
        )
    x5c = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")
    return SigningKey(private_key, certificate, algorithm,
                      key_id(private_key.public_key(), kid_format), x5c)

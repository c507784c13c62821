"""Bootstrapping the certificates authsvc and its registry need. Pure of Flask.

One command makes: a CA that clients trust (``ca.pem``), HTTPS certificates for authsvc and for
the registry signed by it, and a separate token-signing key with a long-lived self-signed
certificate. What the registry trusts is published from the signing certificates as
``rootcertbundle.pem`` and ``jwks.json`` (``write_trust_files``); ``authsvc.pki.key_set``
rotates them.
"""

import ipaddress
import json
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from authsvc.errors import CertificateError, Conflict
from authsvc.pki.signing_keys import KidFormat, PublicKey, jwks_document

KeyType = Literal["ec", "rsa"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

CA_DAYS = 3650
SERVER_DAYS = 825
SIGNING_DAYS = 3650


@dataclass(frozen=True)
class CertPaths:
    """Where every file of one certificate folder lives."""

    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca-key.pem"

    @property
    def authsvc(self) -> Path:
        return self.root / "authsvc.pem"

    @property
    def authsvc_key(self) -> Path:
        return self.root / "authsvc-key.pem"

    @property
    def registry(self) -> Path:
        return self.root / "registry.pem"

    @property
    def registry_key(self) -> Path:
        return self.root / "registry-key.pem"

    @property
    def signing(self) -> Path:
        return self.root / "token-signing.pem"

    @property
    def notification_secret(self) -> Path:
        """What the registry's notifications must carry (``pki/notification_secret.py``)."""
        return self.root / "notification-secret.json"

    @property
    def signing_key(self) -> Path:
        return self.root / "token-signing-key.pem"

    @property
    def signing_next(self) -> Path:
        """The next signing certificate: trusted by the registry, not signing yet."""
        return self.root / "token-signing-next.pem"

    @property
    def signing_next_key(self) -> Path:
        return self.root / "token-signing-next-key.pem"

    @property
    def signing_previous(self) -> Path:
        """The certificate of the key signing before the last switch, trusted for a grace."""
        return self.root / "token-signing-previous.pem"

    @property
    def signing_previous_info(self) -> Path:
        """Until when the previous certificate must stay trusted (JSON)."""
        return self.root / "token-signing-previous.json"

    @property
    def bundle(self) -> Path:
        return self.root / "rootcertbundle.pem"

    @property
    def jwks(self) -> Path:
        return self.root / "jwks.json"

    def all(self) -> list[Path]:
        """Every file ``bootstrap`` writes."""
        return [self.ca, self.ca_key, self.authsvc, self.authsvc_key, self.registry,
                self.registry_key, self.signing, self.signing_key, self.bundle, self.jwks]

    def rotation(self) -> list[Path]:
        """The files a key rotation in progress leaves (see ``authsvc.pki.key_set``)."""
        return [self.signing_next, self.signing_next_key, self.signing_previous,
                self.signing_previous_info]

    def signing_certificates(self) -> list[Path]:
        """The signing certificates that must be trusted, active first, as far as they exist."""
        return [self.signing] + [p for p in (self.signing_next, self.signing_previous)
                                 if p.exists()]


def generate_key(key_type: KeyType = "ec") -> PrivateKey:
    """A new EC P-256 or RSA-2048 private key."""
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "authsvc"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: PublicKey, now: datetime,
             days: int) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days)))


def make_ca(key: PrivateKey, now: datetime) -> x509.Certificate:
    name = _name("authsvc CA")
    return (_builder(name, name, key.public_key(), now, CA_DAYS)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))


def make_server_cert(key: PrivateKey, common_name: str, hosts: Sequence[str],
                     ca: x509.Certificate, ca_key: PrivateKey, now: datetime) -> x509.Certificate:
    """An HTTPS certificate for ``hosts`` (DNS names or IP addresses), signed by the CA."""
    return (_builder(_name(common_name), ca.subject, key.public_key(), now, SERVER_DAYS)
            .add_extension(_san(hosts), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))


def make_signing_cert(key: PrivateKey, now: datetime) -> x509.Certificate:
    """The long-lived self-signed certificate the registry trusts token signatures by."""
    name = _name("authsvc token signing")
    return (_builder(name, name, key.public_key(), now, SIGNING_DAYS)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_private_key(path: Path, key: PrivateKey) -> None:
    """Write ``key`` as unencrypted PKCS#8 PEM, readable by its owner only (0600)."""
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(data)


def write_public_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step (mode 0644): a registry starting meanwhile
    reads the old file or the new one, never half of one."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o644)
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_private_key_file(path: Path) -> None:
    """Raise CertificateError unless ``path`` exists and only its owner can read it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as e:
        raise CertificateError(f"{path} is missing: run `authsvc certs init`") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CertificateError(
            f"{path} is readable by group or others (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {path}`")


def load_certificate(path: Path) -> x509.Certificate:
    """The PEM certificate in ``path``. Raises CertificateError when missing or unreadable."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError as e:
        raise CertificateError(f"{path} is missing: run `authsvc certs init`") from e
    except ValueError as e:
        raise CertificateError(f"{path} is not a PEM certificate: {e}") from e


def trusted_certificates(paths: CertPaths) -> list[x509.Certificate]:
    """The signing certificates the registry must trust: active, next, previous (those present).

    Raises CertificateError when one is missing or unreadable.
    """
    return [load_certificate(path) for path in paths.signing_certificates()]


def signing_public_key(cert: x509.Certificate) -> PublicKey:
    """The RSA or EC key of a signing certificate; raises CertificateError for any other."""
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise CertificateError("a token-signing certificate must hold an RSA or EC key")
    return key


def _jwks(certificates: Sequence[x509.Certificate], kid_format: KidFormat) -> dict[str, Any]:
    return jwks_document([signing_public_key(cert) for cert in certificates], kid_format)


def jwks(paths: CertPaths, kid_format: KidFormat) -> dict[str, Any]:
    """The JWK Set of every trusted signing key, with ``kid`` in ``kid_format``.

    Raises CertificateError when a signing certificate is missing, unreadable or unusable.
    """
    return _jwks(trusted_certificates(paths), kid_format)


def write_trust_files(paths: CertPaths, kid_format: KidFormat) -> list[Path]:
    """Rewrite ``rootcertbundle.pem`` and ``jwks.json`` from the signing certificates.

    The registry reads both only when it starts. Returns the two paths; raises
    CertificateError when a signing certificate is missing, unreadable or unusable.
    """
    certificates = trusted_certificates(paths)
    document = _jwks(certificates, kid_format)
    write_public_file(paths.bundle, b"".join(cert_pem(c) for c in certificates))
    write_public_file(paths.jwks, json.dumps(document, indent=2).encode("ascii") + b"\n")
    return [paths.bundle, paths.jwks]


def bootstrap(root: Path, hosts: Sequence[str], *, force: bool = False,
              key_type: KeyType = "ec", kid_format: KidFormat = "libtrust",
              now: datetime | None = None) -> list[Path]:
    """Create every certificate and key under ``root``; return the paths written.

    ``jwks.json`` names the signing key by ``kid_format`` (KID_FORMAT). A rotation in progress
    is forgotten. Raises Conflict when files exist and ``force`` is false, so nothing is
    overwritten by accident.
    """
    if not hosts:
        raise CertificateError("give at least one --host name for the HTTPS certificates")
    paths = CertPaths(root)
    existing = [p for p in paths.all() + paths.rotation() if p.exists()]
    if existing and not force:
        raise Conflict(f"{existing[0]} already exists; pass --force to replace the certificates")
    root.mkdir(parents=True, exist_ok=True)
    for stale in paths.rotation():
        stale.unlink(missing_ok=True)
    moment = now or datetime.now(UTC)
    ca_key, authsvc_key, registry_key = generate_key(), generate_key(), generate_key()
    signing_key = generate_key(key_type)
    ca = make_ca(ca_key, moment)
    signing = cert_pem(make_signing_cert(signing_key, moment))
    write_private_key(paths.ca_key, ca_key)
    write_private_key(paths.authsvc_key, authsvc_key)
    write_private_key(paths.registry_key, registry_key)
    write_private_key(paths.signing_key, signing_key)
    paths.ca.write_bytes(cert_pem(ca))
    paths.authsvc.write_bytes(
        cert_pem(make_server_cert(authsvc_key, "authsvc", hosts, ca, ca_key, moment)))
    paths.registry.write_bytes(
        cert_pem(make_server_cert(registry_key, "registry", hosts, ca, ca_key, moment)))
    paths.signing.write_bytes(signing)
    write_trust_files(paths, kid_format)
    return paths.all()

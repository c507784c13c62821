"""Certificate bootstrap: the files a registry and its clients need, and that they verify."""

import ipaddress
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    DNSName,
    IPAddress,
    PolicyBuilder,
    Store,
    VerificationError,
)

from authsvc.errors import CertificateError, Conflict
from authsvc.pki.certs import (
    SERVER_DAYS,
    SIGNING_DAYS,
    CertPaths,
    bootstrap,
    check_private_key_file,
    jwks,
    trusted_certificates,
    write_private_key,
    write_public_file,
    write_trust_files,
)
from authsvc.pki.signing_keys import key_id, load_signing_key

HOSTS = ["registry.example", "localhost", "127.0.0.1", "::1"]
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def load_key(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def certs(tmp_path: Path) -> CertPaths:
    root = tmp_path / "certs"
    written = bootstrap(root, HOSTS, now=NOW)
    paths = CertPaths(root)
    assert written == paths.all()
    return paths


def test_bootstrap_writes_every_file(certs: CertPaths) -> None:
    names = sorted(p.name for p in certs.root.iterdir())
    assert names == sorted([
        "ca.pem", "ca-key.pem", "authsvc.pem", "authsvc-key.pem", "registry.pem",
        "registry-key.pem", "token-signing.pem", "token-signing-key.pem", "rootcertbundle.pem",
        "jwks.json",
    ])
    for path in certs.all():
        assert path.stat().st_size > 0


@pytest.mark.parametrize("attr", ["ca_key", "authsvc_key", "registry_key", "signing_key"])
def test_private_keys_are_owner_only(certs: CertPaths, attr: str) -> None:
    path = getattr(certs, attr)
    assert mode(path) == 0o600
    check_private_key_file(path)  # does not raise
    assert load_key(path) is not None


@pytest.mark.parametrize("attr", ["ca", "authsvc", "registry", "signing", "bundle"])
def test_certificates_hold_no_private_key(certs: CertPaths, attr: str) -> None:
    text = getattr(certs, attr).read_text()
    assert "PRIVATE KEY" not in text
    assert text.startswith("-----BEGIN CERTIFICATE-----")


def test_keys_match_their_certificates(certs: CertPaths) -> None:
    for cert, key in [(certs.ca, certs.ca_key), (certs.authsvc, certs.authsvc_key),
                      (certs.registry, certs.registry_key), (certs.signing, certs.signing_key)]:
        assert load_cert(cert).public_key() == load_key(key).public_key(), cert.name


def test_every_key_is_distinct(certs: CertPaths) -> None:
    keys = [load_key(p).public_key() for p in
            (certs.ca_key, certs.authsvc_key, certs.registry_key, certs.signing_key)]
    ders = {k.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo) for k in keys}
    assert len(ders) == 4


@pytest.mark.parametrize("kid_format", ["libtrust", "jwk-thumbprint"])
def test_bootstrap_writes_jwks_with_the_kid_format(tmp_path: Path, kid_format) -> None:
    paths = CertPaths(tmp_path)
    bootstrap(tmp_path, ["localhost"], kid_format=kid_format, now=NOW)
    document = json.loads(paths.jwks.read_text())
    public = load_cert(paths.signing).public_key()
    assert [k["kid"] for k in document["keys"]] == [key_id(public, kid_format)]
    assert document == jwks(paths, kid_format)
    assert "d" not in document["keys"][0]
    assert mode(paths.jwks) == mode(paths.bundle) == 0o644


def test_trust_files_list_every_signing_certificate_active_first(certs: CertPaths) -> None:
    other = certs.root / "other"
    bootstrap(other, ["localhost"], now=NOW)
    certs.signing_previous.write_bytes(CertPaths(other).signing.read_bytes())
    write_trust_files(certs, "libtrust")
    listed = x509.load_pem_x509_certificates(certs.bundle.read_bytes())
    assert listed == trusted_certificates(certs) == [load_cert(certs.signing),
                                                     load_cert(certs.signing_previous)]
    assert len(json.loads(certs.jwks.read_text())["keys"]) == 2
    assert sorted(p.name for p in certs.root.iterdir() if p.name.startswith(".")) == []


def test_trust_files_need_the_active_certificate(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="missing"):
        write_trust_files(CertPaths(tmp_path), "libtrust")
    assert not CertPaths(tmp_path).bundle.exists()


def test_write_public_file_replaces_in_one_step(tmp_path: Path) -> None:
    path = tmp_path / "bundle.pem"
    path.write_text("old")
    path.chmod(0o600)
    write_public_file(path, b"new")
    assert path.read_bytes() == b"new"
    assert mode(path) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.pem"]


def test_bootstrap_refuses_to_overwrite(certs: CertPaths) -> None:
    before = {p: p.read_bytes() for p in certs.all()}
    with pytest.raises(Conflict):
        bootstrap(certs.root, HOSTS, now=NOW)
    assert {p: p.read_bytes() for p in certs.all()} == before


def test_bootstrap_refuses_when_any_single_file_exists(tmp_path: Path) -> None:
    paths = CertPaths(tmp_path)
    paths.bundle.write_text("keep me")
    with pytest.raises(Conflict):
        bootstrap(tmp_path, HOSTS, now=NOW)
    assert paths.bundle.read_text() == "keep me"
    assert not paths.signing_key.exists()


def test_bootstrap_refuses_while_a_rotation_is_in_progress(tmp_path: Path) -> None:
    paths = CertPaths(tmp_path)
    paths.signing_next_key.write_text("a next key")
    with pytest.raises(Conflict, match="token-signing-next-key.pem"):
        bootstrap(tmp_path, HOSTS, now=NOW)


def test_bootstrap_force_forgets_a_rotation_in_progress(certs: CertPaths) -> None:
    for path in certs.rotation():
        path.write_text("stale")
    bootstrap(certs.root, HOSTS, force=True, now=NOW)
    assert not any(path.exists() for path in certs.rotation())
    assert x509.load_pem_x509_certificates(certs.bundle.read_bytes()) == [load_cert(certs.signing)]


def test_bootstrap_force_replaces_and_tightens_modes(certs: CertPaths) -> None:
    old_signing = certs.signing.read_bytes()
    certs.signing_key.chmod(0o644)
    bootstrap(certs.root, HOSTS, force=True, now=NOW)
    assert certs.signing.read_bytes() != old_signing
    assert certs.bundle.read_bytes() == certs.signing.read_bytes()
    for key in (certs.ca_key, certs.authsvc_key, certs.registry_key, certs.signing_key):
        assert mode(key) == 0o600


def test_bootstrap_needs_a_host(tmp_path: Path) -> None:
    with pytest.raises(CertificateError):
        bootstrap(tmp_path / "certs", [], now=NOW)


@pytest.mark.parametrize("attr", ["authsvc", "registry"])
def test_server_cert_names_every_host(certs: CertPaths, attr: str) -> None:
    san = load_cert(getattr(certs, attr)).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"registry.example", "localhost"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}


def _verifier(certs: CertPaths, name, when: datetime = NOW + timedelta(days=1)):
    return (PolicyBuilder().store(Store([load_cert(certs.ca)])).time(when)
            .build_server_verifier(name))


@pytest.mark.parametrize("attr", ["authsvc", "registry"])
@pytest.mark.parametrize(
    "name",
    [DNSName("registry.example"), DNSName("localhost"),
     IPAddress(ipaddress.ip_address("127.0.0.1")), IPAddress(ipaddress.ip_address("::1"))],
    ids=["dns", "localhost", "ipv4", "ipv6"],
)
def test_server_cert_verifies_against_the_ca(certs: CertPaths, attr: str, name) -> None:
    leaf = load_cert(getattr(certs, attr))
    chain = _verifier(certs, name).verify(leaf, [])
    assert chain[-1] == load_cert(certs.ca)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku


def test_server_cert_does_not_verify_for_other_names(certs: CertPaths) -> None:
    leaf = load_cert(certs.registry)
    with pytest.raises(VerificationError):
        _verifier(certs, DNSName("evil.example")).verify(leaf, [])
    with pytest.raises(VerificationError):
        _verifier(certs, IPAddress(ipaddress.ip_address("10.0.0.1"))).verify(leaf, [])


def test_server_cert_does_not_verify_against_another_ca(certs: CertPaths, tmp_path: Path) -> None:
    other = tmp_path / "other"
    bootstrap(other, HOSTS, now=NOW)
    verifier = (PolicyBuilder().store(Store([load_cert(CertPaths(other).ca)]))
                .time(NOW + timedelta(days=1)).build_server_verifier(DNSName("localhost")))
    with pytest.raises(VerificationError):
        verifier.verify(load_cert(certs.registry), [])


def test_ca_is_a_ca_and_server_certs_are_not(certs: CertPaths) -> None:
    ca = load_cert(certs.ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    for attr in ("authsvc", "registry", "signing"):
        cert = load_cert(getattr(certs, attr))
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_signing_cert_is_self_signed_and_is_the_bundle(certs: CertPaths) -> None:
    signing = load_cert(certs.signing)
    assert signing.issuer == signing.subject
    signing.verify_directly_issued_by(signing)
    assert certs.bundle.read_bytes() == certs.signing.read_bytes()
    assert signing.issuer != load_cert(certs.ca).subject


def test_signing_cert_is_not_issued_by_the_ca(certs: CertPaths) -> None:
    with pytest.raises(ValueError):
        load_cert(certs.signing).verify_directly_issued_by(load_cert(certs.ca))


def test_validity_periods(certs: CertPaths) -> None:
    signing = load_cert(certs.signing)
    registry = load_cert(certs.registry)
    assert signing.not_valid_before_utc <= NOW <= signing.not_valid_after_utc
    assert signing.not_valid_after_utc - NOW == timedelta(days=SIGNING_DAYS)
    assert registry.not_valid_after_utc - NOW == timedelta(days=SERVER_DAYS)
    assert SERVER_DAYS <= 825  # what Apple clients accept for TLS server certs


@pytest.mark.parametrize(("key_type", "key_class", "algorithm"),
                         [("ec", ec.EllipticCurvePrivateKey, "ES256"),
                          ("rsa", rsa.RSAPrivateKey, "RS256")])
def test_signing_key_loads_for_tokens(tmp_path: Path, key_type, key_class, algorithm) -> None:
    paths = CertPaths(tmp_path / "certs")
    bootstrap(paths.root, ["localhost"], key_type=key_type, now=NOW)
    assert isinstance(load_key(paths.signing_key), key_class)
    signing = load_signing_key(paths.signing_key.read_bytes(), paths.bundle.read_bytes(),
                               now=NOW + timedelta(days=1))
    assert signing.algorithm == algorithm


def test_tls_keys_stay_ec_when_signing_key_is_rsa(tmp_path: Path) -> None:
    paths = CertPaths(tmp_path)
    bootstrap(tmp_path, ["localhost"], key_type="rsa", now=NOW)
    assert isinstance(load_key(paths.registry_key), ec.EllipticCurvePrivateKey)


@pytest.mark.parametrize("bad_mode", [0o644, 0o640, 0o604, 0o660, 0o700 | 0o004])
def test_check_private_key_file_refuses_loose_modes(tmp_path: Path, bad_mode: int) -> None:
    path = tmp_path / "key.pem"
    write_private_key(path, ec.generate_private_key(ec.SECP256R1()))
    path.chmod(bad_mode)
    with pytest.raises(CertificateError):
        check_private_key_file(path)


def test_check_private_key_file_refuses_missing(tmp_path: Path) -> None:
    with pytest.raises(CertificateError):
        check_private_key_file(tmp_path / "missing.pem")


def test_write_private_key_is_0600_even_with_a_loose_umask(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("old, world readable")
    path.chmod(0o666)
    old = os.umask(0)
    try:
        write_private_key(path, ec.generate_private_key(ec.SECP256R1()))
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    assert "PRIVATE KEY" in path.read_text()

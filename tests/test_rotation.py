"""Signing-key rotation: rotate, restart the registry, activate, prune, with no token refused.

The registry is emulated from the files it reads: ``rootcertbundle.pem`` (``x5c`` must be one
of its certificates; else the ``kid`` names one of its keys) or ``jwks.json`` (the ``kid``
names one of its keys), as distribution does (PROTOCOL §1.6).
"""

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask.testing import FlaskClient, FlaskCliRunner

from authsvc.cli import cli
from authsvc.core.tokens import TokenIssuer
from authsvc.db.services import Services
from authsvc.errors import CertificateError, Conflict
from authsvc.pki import key_set as keys
from authsvc.pki.certs import (
    CertPaths,
    bootstrap,
    cert_pem,
    generate_key,
    make_signing_cert,
    write_private_key,
    write_trust_files,
)
from authsvc.pki.signing_keys import KidFormat, key_id, load_signing_key

ISSUER = "authsvc"
SERVICE = "registry"
NOW = datetime.now(UTC).replace(microsecond=0)
GRACE = timedelta(minutes=16)


@pytest.fixture
def certs_dir(tmp_path: Path) -> Path:
    """A certificate folder of this test's own (overrides the shared one): rotation changes it."""
    root = tmp_path / "certs"
    bootstrap(root, ["localhost", "127.0.0.1"])
    return root


@pytest.fixture
def paths(certs_dir: Path) -> CertPaths:
    return CertPaths(certs_dir)


def bundle(paths: CertPaths) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(paths.bundle.read_bytes())


def jwks_kids(paths: CertPaths) -> list[str]:
    return [k["kid"] for k in json.loads(paths.jwks.read_text())["keys"]]


def issuer(paths: CertPaths, kid_format: KidFormat = "libtrust", *,
           x5c: bool = True) -> TokenIssuer:
    key = load_signing_key(paths.signing_key.read_bytes(), paths.signing.read_bytes(), kid_format)
    return TokenIssuer(key, ISSUER, 300, include_x5c=x5c)


def registry_accepts(token: str, paths: CertPaths, kid_format: KidFormat, via: str) -> bool:
    """Whether a registry started now with ``paths``' trust files would accept ``token``."""
    header = jwt.get_unverified_header(token)
    if via == "jwks":
        trusted = {k["kid"]: jwt.PyJWK(k).key for k in json.loads(paths.jwks.read_text())["keys"]}
        key = trusted.get(header["kid"])
    elif "x5c" in header:
        leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
        key = leaf.public_key() if leaf in bundle(paths) else None
    else:
        key = {key_id(c.public_key(), kid_format): c.public_key()  # type: ignore[arg-type]
               for c in bundle(paths)}.get(header["kid"])
    if key is None:
        return False
    try:
        jwt.decode(token, key, algorithms=["ES256", "RS256"], audience=SERVICE, issuer=ISSUER)
    except jwt.InvalidTokenError:
        return False
    return True


# -- rotate ---------------------------------------------------------------------------------------

def test_rotate_publishes_a_next_key_beside_the_active_one(paths: CertPaths) -> None:
    active = paths.signing.read_bytes()
    active_key = paths.signing_key.read_bytes()
    change = keys.rotate(paths, "libtrust", now=NOW)

    assert paths.signing.read_bytes() == active and paths.signing_key.read_bytes() == active_key
    assert [k.role for k in change.key_set.keys] == ["active", "next"]
    assert change.dropped is None
    assert (paths.signing_next_key.stat().st_mode & 0o777) == 0o600
    next_key = load_signing_key(paths.signing_next_key.read_bytes(),
                                paths.signing_next.read_bytes())
    assert bundle(paths) == [x509.load_pem_x509_certificate(active), next_key.certificate]
    assert jwks_kids(paths) == [k.kid for k in change.key_set.keys]
    assert len(set(jwks_kids(paths))) == 2


@pytest.mark.parametrize(("initial", "requested", "expected"), [
    ("ec", None, ec.EllipticCurvePrivateKey),
    ("rsa", None, rsa.RSAPrivateKey),
    ("ec", "rsa", rsa.RSAPrivateKey),
    ("rsa", "ec", ec.EllipticCurvePrivateKey),
])
def test_next_key_type(tmp_path: Path, initial, requested, expected) -> None:
    paths = CertPaths(tmp_path)
    bootstrap(tmp_path, ["localhost"], key_type=initial)
    keys.rotate(paths, "libtrust", key_type=requested)
    signing = load_signing_key(paths.signing_next_key.read_bytes(),
                               paths.signing_next.read_bytes())
    assert isinstance(signing.private_key, expected)


def test_a_second_rotate_needs_force(paths: CertPaths) -> None:
    keys.rotate(paths, "libtrust", now=NOW)
    waiting = paths.signing_next.read_bytes()
    with pytest.raises(Conflict, match="already waiting"):
        keys.rotate(paths, "libtrust", now=NOW)
    assert paths.signing_next.read_bytes() == waiting
    keys.rotate(paths, "libtrust", now=NOW, force=True)
    assert paths.signing_next.read_bytes() != waiting
    assert len(bundle(paths)) == 2


# -- activate -------------------------------------------------------------------------------------

def test_activate_switches_keys_and_keeps_the_old_certificate_for_the_grace(
        paths: CertPaths) -> None:
    old_cert, old_key = paths.signing.read_bytes(), paths.signing_key.read_bytes()
    keys.rotate(paths, "libtrust", now=NOW)
    new_cert, new_key = paths.signing_next.read_bytes(), paths.signing_next_key.read_bytes()
    published = set(bundle(paths))

    change = keys.activate(paths, "libtrust", grace=GRACE, now=NOW)

    assert paths.signing.read_bytes() == new_cert and paths.signing_key.read_bytes() == new_key
    assert paths.signing_previous.read_bytes() == old_cert
    assert not paths.signing_next.exists() and not paths.signing_next_key.exists()
    assert set(bundle(paths)) == published  # the registry needs no restart
    assert [k.role for k in change.key_set.keys] == ["active", "previous"]
    previous = change.key_set.get("previous")
    assert previous is not None and previous.trusted_until == NOW + GRACE
    assert previous.in_grace(NOW + GRACE - timedelta(seconds=1))
    assert not previous.in_grace(NOW + GRACE)
    # the old private key is gone from the folder
    assert all(p.read_bytes() != old_key for p in paths.root.iterdir() if p.is_file())
    assert (paths.signing_key.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize("kid_format", ["libtrust", "jwk-thumbprint"])
@pytest.mark.parametrize("via", ["x5c", "kid", "jwks"])
def test_tokens_of_old_and_new_key_verify_through_the_rotation(
        paths: CertPaths, kid_format: KidFormat, via: str) -> None:
    write_trust_files(paths, kid_format)
    old = issuer(paths, kid_format, x5c=via == "x5c").issue("alice", SERVICE, []).token
    assert registry_accepts(old, paths, kid_format, via)

    keys.rotate(paths, kid_format, now=NOW)  # then the registry restarts with the new files
    assert registry_accepts(old, paths, kid_format, via)

    keys.activate(paths, kid_format, grace=GRACE, now=NOW)  # then authsvc restarts
    new = issuer(paths, kid_format, x5c=via == "x5c").issue("alice", SERVICE, []).token
    assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
    assert registry_accepts(old, paths, kid_format, via)
    assert registry_accepts(new, paths, kid_format, via)

    keys.prune(paths, kid_format, now=NOW + GRACE)  # then the registry restarts again
    assert not registry_accepts(old, paths, kid_format, via)
    assert registry_accepts(new, paths, kid_format, via)


def test_activate_needs_a_next_key(paths: CertPaths) -> None:
    with pytest.raises(Conflict, match="certs rotate"):
        keys.activate(paths, "libtrust", grace=GRACE, now=NOW)


def test_activate_refuses_a_next_key_the_bundle_does_not_hold(paths: CertPaths) -> None:
    active_only = paths.bundle.read_bytes()
    keys.rotate(paths, "libtrust", now=NOW)
    paths.bundle.write_bytes(active_only)
    with pytest.raises(CertificateError, match="certs publish"):
        keys.activate(paths, "libtrust", grace=GRACE, now=NOW)
    assert paths.signing_next.exists() and not paths.signing_previous.exists()


def test_activate_refuses_a_jwks_with_another_kid_format(paths: CertPaths) -> None:
    keys.rotate(paths, "libtrust", now=NOW)
    with pytest.raises(CertificateError, match="jwk-thumbprint kids"):
        keys.activate(paths, "jwk-thumbprint", grace=GRACE, now=NOW)
    write_trust_files(paths, "jwk-thumbprint")  # `authsvc certs publish` with the new setting
    keys.activate(paths, "jwk-thumbprint", grace=GRACE, now=NOW)


def test_activate_refuses_an_unsafe_next_key(paths: CertPaths) -> None:
    keys.rotate(paths, "libtrust", now=NOW)
    paths.signing_next_key.chmod(0o640)
    with pytest.raises(CertificateError, match="readable by group or others"):
        keys.activate(paths, "libtrust", grace=GRACE, now=NOW)
    assert paths.signing_next_key.exists()


def test_activate_refuses_a_next_key_that_does_not_match_its_certificate(
        paths: CertPaths) -> None:
    keys.rotate(paths, "libtrust", now=NOW)
    write_private_key(paths.signing_next_key, generate_key())
    with pytest.raises(CertificateError, match="does not match"):
        keys.activate(paths, "libtrust", grace=GRACE, now=NOW)


def _plant_next_key(paths: CertPaths) -> None:
    """A next key beside a previous one: only a crash or a hand edit leaves both."""
    key = generate_key()
    write_private_key(paths.signing_next_key, key)
    paths.signing_next.write_bytes(cert_pem(make_signing_cert(key, NOW)))
    write_trust_files(paths, "libtrust")


def test_activate_refuses_while_an_earlier_previous_key_is_in_grace(paths: CertPaths) -> None:
    keys.rotate(paths, "libtrust", now=NOW)
    keys.activate(paths, "libtrust", grace=GRACE, now=NOW)
    earlier = paths.signing_previous.read_bytes()
    _plant_next_key(paths)
    with pytest.raises(Conflict, match="--force"):
        keys.activate(paths, "libtrust", grace=GRACE, now=NOW)
    assert paths.signing_previous.read_bytes() == earlier
    change = keys.activate(paths, "libtrust", grace=GRACE, now=NOW + GRACE)
    assert change.dropped is not None and change.dropped.certificate == (
        x509.load_pem_x509_certificate(earlier))


# -- the previous key's grace ---------------------------------------------------------------------

@pytest.fixture
def activated(paths: CertPaths) -> CertPaths:
    keys.rotate(paths, "libtrust", now=NOW)
    keys.activate(paths, "libtrust", grace=GRACE, now=NOW)
    return paths


def test_prune_waits_for_the_grace(activated: CertPaths) -> None:
    with pytest.raises(Conflict, match="may be valid until"):
        keys.prune(activated, "libtrust", now=NOW + GRACE - timedelta(seconds=1))
    assert len(bundle(activated)) == 2
    change = keys.prune(activated, "libtrust", now=NOW + GRACE)
    assert change.dropped is not None and change.dropped.role == "previous"
    assert bundle(activated) == [x509.load_pem_x509_certificate(activated.signing.read_bytes())]
    assert len(jwks_kids(activated)) == 1
    assert not activated.signing_previous.exists()
    assert not activated.signing_previous_info.exists()
    assert keys.prune(activated, "libtrust", now=NOW + GRACE).dropped is None


def test_prune_force_drops_at_once(activated: CertPaths) -> None:
    assert keys.prune(activated, "libtrust", now=NOW, force=True).dropped is not None
    assert len(bundle(activated)) == 1


@pytest.mark.parametrize("record", [None, "not json", '{"trusted_until": "2020-01-01T00:00:00"}'])
def test_an_unknown_grace_counts_as_not_over(activated: CertPaths, record: str | None) -> None:
    if record is None:
        activated.signing_previous_info.unlink()
    else:
        activated.signing_previous_info.write_text(record)
    with pytest.raises(Conflict, match="unknown time"):
        keys.prune(activated, "libtrust", now=NOW + timedelta(days=365))
    assert keys.prune(activated, "libtrust", now=NOW, force=True).dropped is not None


def test_rotate_refuses_while_the_previous_key_is_in_grace(activated: CertPaths) -> None:
    with pytest.raises(Conflict, match="previous key"):
        keys.rotate(activated, "libtrust", now=NOW)
    assert not activated.signing_next.exists()
    change = keys.rotate(activated, "libtrust", now=NOW, force=True)
    assert change.dropped is not None
    assert [k.role for k in change.key_set.keys] == ["active", "next"]


def test_rotate_drops_the_previous_key_once_its_grace_is_over(activated: CertPaths) -> None:
    previous = activated.signing_previous.read_bytes()
    change = keys.rotate(activated, "libtrust", now=NOW + GRACE)
    assert change.dropped is not None
    assert x509.load_pem_x509_certificate(previous) not in bundle(activated)
    assert [k.role for k in change.key_set.keys] == ["active", "next"]
    assert len(bundle(activated)) == 2


# -- published files ------------------------------------------------------------------------------

def test_unpublished_reports_stale_files_and_publish_repairs_them(paths: CertPaths) -> None:
    key_set = keys.read_key_set(paths, "jwk-thumbprint")
    assert keys.unpublished(paths, keys.read_key_set(paths, "libtrust"), "libtrust") == []
    assert keys.unpublished(paths, key_set, "jwk-thumbprint") == [
        "jwks.json does not list exactly the signing keys with jwk-thumbprint kids"]
    paths.bundle.unlink()
    assert keys.unpublished(paths, key_set, "jwk-thumbprint")[0] == (
        "rootcertbundle.pem is missing or unreadable")
    write_trust_files(paths, "jwk-thumbprint")
    assert keys.unpublished(paths, key_set, "jwk-thumbprint") == []


# -- authsvc itself -------------------------------------------------------------------------------

def test_a_running_issuer_keeps_its_key_until_restarted(state: Services, paths: CertPaths) -> None:
    before = state.issuer.key.kid
    keys.rotate(paths, "libtrust")
    keys.activate(paths, "libtrust", grace=GRACE)
    assert state.issuer.key.kid == before  # a running process signs on with the old key
    assert state.load_issuer().key.kid != before  # a restarted one picks the new key


@pytest.mark.app_config(KID_FORMAT="jwk-thumbprint")
def test_load_issuer_warns_when_jwks_has_other_kids(state: Services, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="authsvc.db.services"):
        state.load_issuer()
    assert "jwk-thumbprint kids; run `authsvc certs publish`" in caplog.text


def test_load_issuer_is_quiet_when_files_are_current(state: Services, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="authsvc.db.services"):
        state.load_issuer()
    assert caplog.text == ""


@pytest.mark.parametrize("kid_format", ["libtrust", "jwk-thumbprint"])
def test_jwks_endpoint_lists_every_trusted_key(app, client: FlaskClient, paths: CertPaths,
                                               kid_format: KidFormat) -> None:
    app.config["KID_FORMAT"] = kid_format
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    active = keys.read_key_set(paths, kid_format).active
    assert [k["kid"] for k in response.json["keys"]] == [active.kid]
    keys.rotate(paths, kid_format)
    listed = client.get("/.well-known/jwks.json").json["keys"]
    assert [k["kid"] for k in listed] == [k.kid for k in keys.read_key_set(paths, kid_format).keys]
    assert listed == json.loads(paths.jwks.read_text())["keys"]
    assert all("d" not in k for k in listed)


# -- the commands ---------------------------------------------------------------------------------

def run(runner: FlaskCliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["certs", *args])
    return result.exit_code, result.output


def test_rotate_command_walk_through(runner: FlaskCliRunner, paths: CertPaths) -> None:
    code, output = run(runner, "rotate")
    assert code == 0, output
    assert "Restart the registry now so it trusts the new key; then run " \
           "`authsvc certs rotate --activate`." in output
    upcoming = keys.read_key_set(paths, "libtrust").get("next")
    assert upcoming is not None and upcoming.kid in output

    code, output = run(runner, "status")
    assert code == 0 and "next\tES256\t" in output and "restart the registry" in output

    code, output = run(runner, "rotate", "--activate", "--grace", "120")
    assert code == 0, output
    assert f"the next key is now the active one: {upcoming.kid}" in output
    assert "Restart authsvc now" in output and "The registry needs no restart" in output
    assert "authsvc certs prune" in output

    code, output = run(runner, "prune")
    assert code == 1 and "may be valid until" in output
    code, output = run(runner, "prune", "--force")
    assert code == 0 and "restart the registry" in output
    code, output = run(runner, "prune")
    assert (code, output) == (0, "no previous key to drop\n")


@pytest.mark.parametrize(("args", "message"), [
    (["rotate", "--grace", "10"], "--grace goes with --activate"),
    (["rotate", "--activate", "--key-type", "rsa"], "--key-type goes with the first step"),
])
def test_rotate_command_usage_errors(runner: FlaskCliRunner, paths: CertPaths, args, message
                                     ) -> None:
    code, output = run(runner, *args)
    assert code == 2 and message in output
    assert not paths.signing_next.exists()


def test_activate_command_without_rotate_is_an_error(runner: FlaskCliRunner) -> None:
    code, output = run(runner, "rotate", "--activate")
    assert code == 1 and "Error: there is no next key" in output


@pytest.mark.app_config(KID_FORMAT="jwk-thumbprint")
def test_status_and_publish_commands(runner: FlaskCliRunner, paths: CertPaths) -> None:
    code, output = run(runner, "status")
    assert code == 0 and "warning: jwks.json does not list" in output
    code, output = run(runner, "publish")
    assert code == 0 and f"wrote {paths.jwks}" in output
    code, output = run(runner, "status")
    assert "warning" not in output
    assert output.startswith("active\tES256\t" + keys.read_key_set(paths, "jwk-thumbprint")
                             .active.kid)


@pytest.mark.app_config(KID_FORMAT="jwk-thumbprint")
def test_certs_init_writes_jwks_with_the_kid_format(runner: FlaskCliRunner,
                                                    paths: CertPaths) -> None:
    code, output = run(runner, "init", "--host", "localhost", "--force")
    assert code == 0, output
    assert str(paths.jwks) in output
    assert jwks_kids(paths) == [keys.read_key_set(paths, "jwk-thumbprint").active.kid]

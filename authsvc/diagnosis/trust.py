"""Does a client trust an HTTPS address: the TLS handshake a client makes, with the CAs clients
are told to trust (the system's and authsvc's ``ca.pem``), checked for the host name in the
URL; and what is wrong when it fails (unreachable, not TLS, untrusted, another name, expired).
Pure of Flask; the probe opens one socket.
"""

import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from authsvc.diagnosis.findings import Finding, fail

#: OpenSSL's verify codes for a certificate nobody in the trust store vouches for.
_UNTRUSTED = frozenset({18, 19, 20, 21, 2})
_EXPIRED, _NOT_YET_VALID = 10, 9
#: Host name mismatch, IP address mismatch.
_WRONG_NAME = frozenset({62, 64})


@dataclass(frozen=True)
class TlsProblem:
    """Why a TLS connection failed. ``kind``: unreachable, not-tls, untrusted, wrong-name,
    expired, invalid; ``names``: the DNS names and addresses the server's certificate holds
    (when it could be read); ``issuer``: its issuer's common name."""

    kind: str
    detail: str
    names: tuple[str, ...] = ()
    issuer: str = ""


def host_port(url: str) -> tuple[str, int]:
    """The host (no brackets) and port (default 443) of an https URL."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or 443


def client_context(ca_files: Sequence[Path]) -> ssl.SSLContext:
    """The trust of a client told to trust ``ca_files``: the system's CAs plus those."""
    context = ssl.create_default_context()
    for path in ca_files:
        context.load_verify_locations(cafile=str(path))
    return context


def write_bundle(ca_files: Sequence[Path], target: Path) -> Path:
    """Write the system's CA file (when there is one) and ``ca_files`` into ``target``, one
    PEM file for an HTTP client that takes a single bundle; returns ``target``."""
    system = ssl.get_default_verify_paths().cafile
    parts = [Path(system).read_bytes()] if system and Path(system).is_file() else []
    parts += [path.read_bytes() for path in ca_files]
    target.write_bytes(b"\n".join(parts))
    return target


def certificate_names(der: bytes) -> tuple[tuple[str, ...], str]:
    """The DNS names and IP addresses of a certificate, and its issuer's common name."""
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*san.get_values_for_type(x509.DNSName),
                 *(str(a) for a in san.get_values_for_type(x509.IPAddress))]
    except x509.ExtensionNotFound:
        names = []
    if not names:
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    issuer = [str(a.value) for a in cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return tuple(names), (issuer[0] if issuer else cert.issuer.rfc4514_string())


def _peer_certificate(host: str, port: int, timeout: float) -> bytes | None:
    """The server's certificate, read without checking it (to explain a failed check)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None


def _kind(error: ssl.SSLCertVerificationError) -> str:
    code = error.verify_code
    if code in _WRONG_NAME:
        return "wrong-name"
    if code in (_EXPIRED, _NOT_YET_VALID):
        return "expired"
    return "untrusted" if code in _UNTRUSTED else "invalid"


def probe(url: str, context: ssl.SSLContext, timeout: float = 5.0) -> TlsProblem | None:
    """Make the TLS handshake a client of ``url`` makes with ``context``; None when it
    succeeds, else what went wrong."""
    host, port = host_port(url)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return None
    except ssl.SSLCertVerificationError as e:
        der = _peer_certificate(host, port, timeout)
        names, issuer = certificate_names(der) if der else ((), "")
        return TlsProblem(_kind(e), str(e.verify_message), names, issuer)
    except ssl.SSLError as e:
        return TlsProblem("not-tls", e.reason or type(e).__name__)
    except OSError as e:
        return TlsProblem("unreachable", e.strerror or type(e).__name__)


def tls_verdict(check: str, url: str, problem: TlsProblem, *, trusted: str,
                server: str = "authsvc") -> Finding:
    """The failure a client of ``url`` would see; ``trusted`` names the CAs it trusts,
    ``server`` what should answer there."""
    host, port = host_port(url)
    names = ", ".join(problem.names) or "no name"
    if problem.kind == "unreachable":
        return fail(check, f"{host}:{port} cannot be reached ({problem.detail}): start {server} "
                    f"there or correct the URL ({url})")
    if problem.kind == "not-tls":
        return fail(check, f"{host}:{port} does not complete a TLS handshake "
                    f"({problem.detail}): it must serve HTTPS (is it plain HTTP, or another "
                    "service?)")
    if problem.kind == "wrong-name":
        return fail(check, f"the certificate at {host}:{port} is for {names}, not {host}, the "
                    f"name in the URL, so clients refuse it: give it a certificate that names "
                    f"{host}, or put one of its names in the URL")
    if problem.kind == "untrusted":
        return fail(check, f"the certificate at {host}:{port} (issued by {problem.issuer or '?'} "
                    f"for {names}) is not signed by a CA clients trust ({trusted}): serve a "
                    "certificate from authsvc's CA (`authsvc certs init`) or give clients the CA "
                    "that signed it")
    if problem.kind == "expired":
        return fail(check, f"the certificate at {host}:{port} is outside its validity "
                    f"({problem.detail}): renew it (`authsvc certs init --force`) and restart")
    return fail(check, f"the certificate at {host}:{port} is refused ({problem.detail}): "
                "replace it with one from `authsvc certs init`")

"""The nginx front of the registry: ``docker search`` and ``podman search`` send ``/v1/search``
to the registry's address, and the registry serves no ``/v1/``; podman falls back to
``/v2/_catalog``, which the registry does not filter per caller. Pure.

The ``server { … }`` block goes in nginx's ``http {}`` (``conf.d``). It terminates TLS on the
registry's address, sends ``/v1/`` and exactly ``/v2/_catalog`` to authsvc (which lists what
the caller may pull: ``authsvc.web.api.v2_catalog``) and the rest of ``/v2/`` to the registry,
all over HTTPS verified against authsvc's CA with the upstream's own name, and answers anything
else with a registry-format 404. The registry's own catalog stays reachable at REGISTRY_URL,
past nginx (``authsvc registry sync`` reads it there). ``/v2/`` gets what a registry behind
nginx needs (distribution's nginx recipe): no body size limit, no buffering either way (layers
stream through), HTTP/1.1 to the upstream (a chunked upload is buffered whole otherwise), long
timeouts for big layers, and the client's ``Host`` and scheme, from which the registry builds
its upload ``Location`` URLs. nginx passes the registry's ``Docker-Distribution-Api-Version``
header through unchanged: the block hides none of the registry's headers.
"""

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509

from authsvc.errors import InvalidRequest

#: Seconds nginx waits on a slow client or registry between two reads or writes: big layers.
TIMEOUT = 900
_BARE = re.compile(r"[A-Za-z0-9_./:@%+=,~-]+")
_LISTEN = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.*-]*):(?P<port>[0-9]{1,5})")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def nginx_string(value: str) -> str:
    """``value`` as one nginx configuration word: bare when it can be, else double-quoted.

    Raises InvalidRequest for control characters and ``$`` (nginx would read a variable in
    certificate paths and in quoted strings alike).
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c == "$" for c in value) or not value:
        raise InvalidRequest(f"{value[:200]!r} cannot go into an nginx configuration")
    if _BARE.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Upstream:
    """An HTTPS server nginx proxies to: ``origin`` (``https://host:port``) and the name its
    certificate is checked against and sent as SNI (nginx sends none for an IP address)."""

    origin: str
    ssl_name: str


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def dns_names(certificate: x509.Certificate) -> list[str]:
    """The DNS names in ``certificate``'s subjectAltName, in order (none without one)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(san.value.get_values_for_type(x509.DNSName))


def upstream(url: str, what: str, ssl_name: str | None = None,
             certificate: x509.Certificate | None = None) -> Upstream:
    """The upstream ``url`` names: ``https://host[:port]`` with no path (a ``/`` is fine),
    query or user.

    Its certificate is checked against ``ssl_name``, by default the URL's host; for an IP
    address the first DNS name of ``certificate`` (the upstream's own), since nginx matches
    only DNS names (an IP address in subjectAltName never matches). Raises InvalidRequest
    naming ``what`` for a bad URL or name, or an IP address with no DNS name to check.
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as e:
        raise InvalidRequest(f"{what}: {url[:200]!r} is not a URL") from e
    if (parts.scheme != "https" or not host or parts.path not in ("", "/") or parts.query
            or parts.fragment or parts.username is not None or parts.password is not None):
        raise InvalidRequest(f"{what} must be https://HOST[:PORT] with no path, not {url[:200]!r}")
    address = _is_address(host)
    origin = f"https://{f'[{host}]' if address and ':' in host else host}:{port or 443}"
    if ssl_name is None and address:
        names = dns_names(certificate) if certificate is not None else []
        if not names:
            raise InvalidRequest(f"{what}: nginx checks certificates by DNS name only; name "
                                 f"one that the certificate of {host} holds")
        ssl_name = names[0]
    name = ssl_name or host
    if not _NAME.fullmatch(name) or _is_address(name):
        raise InvalidRequest(f"{what}: {name[:200]!r} is no DNS name (nginx checks "
                             "certificates by DNS name only)")
    return Upstream(origin, name)


def listen_address(listen: str) -> str:
    """``HOST:PORT`` (``[v6]:PORT``, ``*:PORT``) as nginx's ``listen`` takes it; raises
    InvalidRequest otherwise."""
    match = _LISTEN.fullmatch(listen)
    if match is None or not 1 <= int(match.group("port")) <= 65535:
        raise InvalidRequest(f"--listen must be HOST:PORT, not {listen[:200]!r}")
    return listen if match.group("host") else match.group("port")


def default_server_name(listen: str) -> str:
    """The listen host as the server name; ``_`` (no name: the default server answers) for a
    wildcard address."""
    host = listen.rpartition(":")[0].strip("[]")
    if host in ("", "*") or (_is_address(host) and ipaddress.ip_address(host).is_unspecified):
        return "_"
    return host


def _proxied(upstream: Upstream, ca: Path) -> str:
    """The directives shared by every proxied location: HTTPS to ``upstream``, verified, and the
    client's host, scheme and address forwarded."""
    return f"""\
        proxy_pass {upstream.origin};
        proxy_http_version 1.1;
        proxy_ssl_verify on;
        proxy_ssl_verify_depth 2;
        proxy_ssl_trusted_certificate {nginx_string(str(ca))};
        proxy_ssl_name {nginx_string(upstream.ssl_name)};
        proxy_ssl_server_name on;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Real-IP $remote_addr;
"""


def nginx_server_block(*, listen: str, server_names: Sequence[str], certificate: Path,
                       key: Path, ca: Path, authsvc: Upstream, registry: Upstream) -> str:
    """The ``server { … }`` block (see the module). Raises InvalidRequest for a bad listen
    address, server name or path."""
    names = " ".join(nginx_string(name) for name in server_names or [default_server_name(listen)])
    not_found = '{"errors":[{"code":"NOT_FOUND","message":"not found"}]}'
    return f"""\
# nginx in front of the registry, written by `authsvc proxy-config`: put it in http {{}}.
# /v1/ (docker search, podman search) and /v2/_catalog (podman search, filtered per caller) go
# to authsvc, the rest of /v2/ to the registry.
server {{
    listen {listen_address(listen)} ssl;
    server_name {names};
    ssl_certificate {nginx_string(str(certificate))};
    ssl_certificate_key {nginx_string(str(key))};
    ssl_protocols TLSv1.2 TLSv1.3;

    location /v2/ {{
{_proxied(registry, ca)}\
        # Layers of any size stream through both ways, chunked uploads included.
        client_max_body_size 0;
        chunked_transfer_encoding on;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_read_timeout {TIMEOUT}s;
        proxy_send_timeout {TIMEOUT}s;
        # The registry's Docker-Distribution-Api-Version header passes through unchanged.
    }}

    location /v1/ {{
{_proxied(authsvc, ca)}\
    }}

    # The catalog lists what the caller may pull (the registry's lists every repository).
    location = /v2/_catalog {{
{_proxied(authsvc, ca)}\
    }}

    location / {{
        default_type application/json;
        return 404 '{not_found}';
    }}
}}
"""

"""Configuration: defaults, layering and validation. No Flask here.

Layers, later ones winning: ``DEFAULTS`` → ``instance/config.py`` → ``AUTHSVC_*`` environment
variables → the mapping a test passes to ``create_app``. ``validate_config`` runs once at start
and names the offending key.
"""

import os
import re
from collections.abc import Mapping, MutableMapping
from ipaddress import ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from authsvc.core.client_address import trusted_networks
from authsvc.errors import ConfigError

DEFAULTS: dict[str, Any] = {
    # The registry's auth.token.issuer; must match it exactly.
    "ISSUER": "authsvc",
    # The registry's auth.token.service values this service issues tokens for.
    "SERVICES": ["registry"],
    # Token lifetime in seconds.
    "TOKEN_TTL": 900,
    # A token asked for again with the same subject, service and granted access within this
    # many seconds is served again instead of signed anew (0: sign every time).
    "TOKEN_CACHE_SECONDS": 5,
    # How long a verified user/password pair skips bcrypt on repeated Basic auth (0: never).
    "CREDENTIAL_CACHE_SECONDS": 60,
    # Refresh tokens (Docker's identity tokens) expire after this many days.
    "REFRESH_TOKEN_DAYS": 90,
    # How clients reach authsvc; the realm is PUBLIC_URL + "/token".
    "PUBLIC_URL": "https://localhost:5001",
    # Visibility of repositories created without one.
    "DEFAULT_VISIBILITY": "private",
    # Who may create organisations: admins, or users (any user logged in with a password, who
    # becomes its first owner).
    "ORG_CREATORS": "admins",
    # bcrypt cost; hashes with a lower cost are upgraded at the next login.
    "BCRYPT_ROUNDS": 12,
    # Put the signing certificate in the token header (x5c); off = kid only.
    "TOKEN_X5C": True,
    # How kid is derived: libtrust (registry 2.8) or jwk-thumbprint (registry 3.x).
    "KID_FORMAT": "libtrust",
    # Failed logins per account, and per client address, within LOCKOUT_WINDOW seconds before
    # further logins get 429 (0 turns a limit off).
    "LOCKOUT_ATTEMPTS": 10,
    "LOCKOUT_ADDRESS_ATTEMPTS": 100,
    "LOCKOUT_WINDOW": 300,
    # Where failures are counted: auto (redis if REDIS_URL is set, else database), redis,
    # database, or memory (one process only).
    "LOCKOUT_STORE": "auto",
    "REDIS_URL": "",
    "REDIS_PREFIX": "authsvc:",
    # Proxies (addresses or CIDR networks) whose X-Forwarded-For is believed; empty: the peer
    # is the client and the header is ignored.
    "TRUSTED_PROXIES": [],
    # Tokens issued are written to the audit trail in one transaction per this many seconds
    # (0: one per token). Everything else is written with the change it describes.
    "AUDIT_BATCH_SECONDS": 1,
    # Largest request body accepted (bytes); larger ones get 413.
    "MAX_REQUEST_BYTES": 65536,
    # Seconds a request body may take to arrive whole under `authsvc serve`; then 408.
    "BODY_TIMEOUT": 10,
    # The registry's own URL, for `authsvc registry sync` and deletes (empty: authsvc does not
    # talk to the registry); `authsvc registry-config` sets it in instance/config.py.
    "REGISTRY_URL": "",
    # The CA file that vouches for the registry's certificate (empty: authsvc's own CA,
    # certs/ca.pem, when it exists, else the system's).
    "REGISTRY_CA": "",
    # The registry's address as clients write it in image names (`docker pull HOST/NAME:TAG`),
    # shown by the web pages; empty: REGISTRY_URL's host:port, else PUBLIC_URL's host with :5000.
    "REGISTRY_HOST": "",
    # A web session ends after this many seconds without a request, and this many seconds
    # after signing in, whatever its use.
    "WEB_SESSION_IDLE_SECONDS": 1800,
    "WEB_SESSION_MAX_SECONDS": 43200,
    # SQLAlchemy URL; empty means SQLite in the instance folder.
    "DATABASE_URL": "",
    # GET /metrics (Prometheus): a bearer token that may scrape (at least 16 characters),
    # and/or addresses and CIDR networks that may scrape without one; neither: /metrics is 404.
    "METRICS_TOKEN": "",
    "METRICS_ALLOW": [],
    # Where `authsvc serve` listens, and how many worker processes and threads it runs.
    "HOST": "127.0.0.1",
    "PORT": 5001,
    "WORKERS": 2,
    "THREADS": 4,
}

ENV_PREFIX = "AUTHSVC"


def default_instance_path() -> Path:
    return Path(os.environ.get(f"{ENV_PREFIX}_INSTANCE", "instance")).resolve()


def default_certs_dir() -> Path:
    return Path(os.environ.get(f"{ENV_PREFIX}_CERTS_DIR", "certs")).resolve()


def _int(config: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{key} must be a whole number from {low} to {high}, not {value!r}")
    return value


def _choice(config: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = config[key]
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def _string_list(config: Mapping[str, Any], key: str) -> list[str]:
    """A list of strings, or a comma list (the environment's form), without blank entries.
    Raises ConfigError naming the key for anything else."""
    value = config[key]
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{key} must be a list of strings or a comma list, not {value!r}")
    return list(value)


def _trusted_proxies(config: MutableMapping[str, Any]) -> None:
    """TRUSTED_PROXIES: a list of addresses and CIDR networks; raises ConfigError naming it."""
    proxies = _string_list(config, "TRUSTED_PROXIES")
    try:
        trusted_networks(proxies)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    config["TRUSTED_PROXIES"] = proxies


#: host[:port] as an image name starts: a DNS name or IPv4 address, or [IPv6], and a port.
REGISTRY_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
                           r"(?::[0-9]{1,5})?")


def _registry_host(config: MutableMapping[str, Any]) -> None:
    """REGISTRY_HOST: given (host[:port]), or derived from REGISTRY_URL, else PUBLIC_URL's host
    with the registry's usual port 5000. Raises ConfigError naming it."""
    host = config["REGISTRY_HOST"]
    if not isinstance(host, str) or (host and not REGISTRY_HOST.fullmatch(host)):
        raise ConfigError(f"REGISTRY_HOST must be host or host:port, not {host!r}")
    if not host:
        if config["REGISTRY_URL"]:
            host = urlsplit(config["REGISTRY_URL"]).netloc.rpartition("@")[2]
        else:
            public = urlsplit(config["PUBLIC_URL"]).netloc.rpartition("@")[2]
            name = public.rsplit(":", 1)[0] if not public.endswith("]") else public
            host = f"{name}:5000"
    config["REGISTRY_HOST"] = host


def _web_sessions(config: Mapping[str, Any]) -> None:
    """The web session timeouts: the idle one no longer than the absolute one."""
    idle = _int(config, "WEB_SESSION_IDLE_SECONDS", 60, 7 * 86400)
    longest = _int(config, "WEB_SESSION_MAX_SECONDS", 300, 30 * 86400)
    if idle > longest:
        raise ConfigError(f"WEB_SESSION_IDLE_SECONDS ({idle}) must not be longer than "
                          f"WEB_SESSION_MAX_SECONDS ({longest})")


#: The shortest METRICS_TOKEN accepted: a guessable token would open /metrics to anyone.
METRICS_TOKEN_MIN_LENGTH = 16


def _metrics(config: MutableMapping[str, Any]) -> None:
    """METRICS_TOKEN (a string, empty or long enough) and METRICS_ALLOW (addresses and CIDR
    networks). Raises ConfigError naming the key, never showing the token."""
    token = config["METRICS_TOKEN"]
    if not isinstance(token, str) or (token and (
            len(token) < METRICS_TOKEN_MIN_LENGTH or not token.isascii()
            or not token.isprintable() or " " in token)):
        raise ConfigError(f"METRICS_TOKEN must be empty or at least {METRICS_TOKEN_MIN_LENGTH} "
                          "printable ASCII characters without spaces (e.g. the output of "
                          "`openssl rand -hex 32`)")
    allowed = _string_list(config, "METRICS_ALLOW")
    for entry in allowed:
        try:
            ip_network(entry)
        except ValueError as e:
            raise ConfigError(f"METRICS_ALLOW: {entry!r} is not an IP address or a network "
                              f"such as 10.0.0.0/8 ({e})") from None
    config["METRICS_ALLOW"] = allowed


def metrics_enabled(config: Mapping[str, Any]) -> bool:
    """Whether ``/metrics`` answers (and requests are timed): METRICS_TOKEN or METRICS_ALLOW
    is set."""
    return bool(config["METRICS_TOKEN"] or config["METRICS_ALLOW"])


def validate_config(config: MutableMapping[str, Any]) -> None:
    """Check and normalise every authsvc key in place. Raises ConfigError naming the key."""
    services = config["SERVICES"]
    if isinstance(services, str):
        services = [s.strip() for s in services.split(",") if s.strip()]
    if not isinstance(services, list | tuple) or not services or not all(
            isinstance(s, str) and s for s in services):
        raise ConfigError(f"SERVICES must be a non-empty list of service names, not {services!r}")
    config["SERVICES"] = list(services)
    if not isinstance(config["ISSUER"], str) or not config["ISSUER"]:
        raise ConfigError("ISSUER must be a non-empty string")
    _int(config, "TOKEN_TTL", 60, 86400)
    _int(config, "REFRESH_TOKEN_DAYS", 1, 3650)
    _int(config, "CREDENTIAL_CACHE_SECONDS", 0, 3600)
    _int(config, "TOKEN_CACHE_SECONDS", 0, 300)
    _int(config, "BCRYPT_ROUNDS", 4, 31)
    _int(config, "LOCKOUT_ATTEMPTS", 0, 100000)
    _int(config, "LOCKOUT_ADDRESS_ATTEMPTS", 0, 1000000)
    _int(config, "LOCKOUT_WINDOW", 1, 86400)
    _int(config, "MAX_REQUEST_BYTES", 1024, 10 * 1024 * 1024)
    _int(config, "BODY_TIMEOUT", 1, 300)
    _int(config, "AUDIT_BATCH_SECONDS", 0, 60)
    config["MAX_CONTENT_LENGTH"] = config["MAX_REQUEST_BYTES"]
    _choice(config, "LOCKOUT_STORE", ("auto", "redis", "database", "memory"))
    if config["LOCKOUT_STORE"] == "redis" and not config["REDIS_URL"]:
        raise ConfigError("LOCKOUT_STORE is redis but REDIS_URL is empty")
    for key in ("REDIS_URL", "REDIS_PREFIX"):
        if not isinstance(config[key], str):
            raise ConfigError(f"{key} must be a string")
    _trusted_proxies(config)
    _int(config, "PORT", 1, 65535)
    _int(config, "WORKERS", 1, 64)
    _int(config, "THREADS", 1, 256)
    _choice(config, "DEFAULT_VISIBILITY", ("private", "public"))
    _choice(config, "ORG_CREATORS", ("admins", "users"))
    _choice(config, "KID_FORMAT", ("libtrust", "jwk-thumbprint"))
    if not isinstance(config["TOKEN_X5C"], bool):
        raise ConfigError(f"TOKEN_X5C must be true or false, not {config['TOKEN_X5C']!r}")
    url = urlsplit(str(config["PUBLIC_URL"]))
    if url.scheme not in ("https", "http") or not url.netloc:
        raise ConfigError(f"PUBLIC_URL must be an https:// URL, not {config['PUBLIC_URL']!r}")
    config["PUBLIC_URL"] = str(config["PUBLIC_URL"]).rstrip("/")
    registry = config["REGISTRY_URL"]
    if not isinstance(registry, str) or (registry and (
            urlsplit(registry).scheme not in ("https", "http") or not urlsplit(registry).netloc)):
        raise ConfigError(f"REGISTRY_URL must be empty or an https:// URL, not {registry!r}")
    config["REGISTRY_URL"] = registry.rstrip("/")
    if not isinstance(config["REGISTRY_CA"], str):
        raise ConfigError("REGISTRY_CA must be a file name (a string)")
    _registry_host(config)
    _web_sessions(config)
    if not isinstance(config["DATABASE_URL"], str):
        raise ConfigError("DATABASE_URL must be a string")
    _metrics(config)

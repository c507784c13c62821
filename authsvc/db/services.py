"""The service container: the services one app holds (password hasher, accounts,
repositories, grants, tokens, audit...), wired once, and the one typed way to reach them.

Authentication (``credentials``: credentials to a Subject) and authorization (``authorizer``:
a Subject and scopes to granted actions) sit side by side, as docker_auth's authn and authz.
Every service that reads on the token path shares the one ``Reads``."""

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from authsvc.core.client_address import trusted_networks
from authsvc.core.credential_cache import CredentialCache
from authsvc.core.passwords import PasswordHasher
from authsvc.core.tokens import TokenIssuer
from authsvc.db.access import Authorizer
from authsvc.db.access_tokens import AccessTokens
from authsvc.db.accounts import Accounts
from authsvc.db.audit import Audit, Event
from authsvc.db.catalog import Catalog, EventRecorder
from authsvc.db.credentials import Credentials
from authsvc.db.grants import Grants
from authsvc.db.lockout import DatabaseStore, FailureStore, LoginThrottle, MemoryStore, RedisStore
from authsvc.db.models import DbSession
from authsvc.db.organizations import Organizations
from authsvc.db.reads import Reads
from authsvc.db.refresh_tokens import RefreshTokens
from authsvc.db.repositories import Repositories
from authsvc.db.web_sessions import WebSessions
from authsvc.errors import CertificateError, RegistryNotConfigured
from authsvc.pki.certs import CertPaths, check_private_key_file
from authsvc.pki.key_set import read_key_set, unpublished
from authsvc.pki.notification_secret import SecretFile
from authsvc.pki.signing_keys import load_signing_key

if TYPE_CHECKING:
    from flask import Flask

    from authsvc.core.scopes import Scope
    from authsvc.registry.client import RegistryClient

log = logging.getLogger(__name__)


def failure_store(config: Mapping[str, Any], session: DbSession,
                  reads: Reads) -> FailureStore:
    """Where failed logins are counted: LOCKOUT_STORE, or Redis when REDIS_URL is set, else
    the database."""
    kind = config["LOCKOUT_STORE"]
    if kind == "auto":
        kind = "redis" if config["REDIS_URL"] else "database"
    if kind == "redis":
        import redis

        return RedisStore(redis.Redis.from_url(config["REDIS_URL"], socket_timeout=2),
                          prefix=config["REDIS_PREFIX"] + "lockout:")
    if kind == "memory":
        return MemoryStore()
    return DatabaseStore(session, reads)


class Services:
    """Built once per app by ``create_app``; the signing key is loaded on first use."""

    def __init__(self, config: Mapping[str, Any], session: DbSession) -> None:
        self.config = config
        self.certs = CertPaths(Path(config["CERTS_DIR"]))
        self.hasher = PasswordHasher(config["BCRYPT_ROUNDS"])
        #: Networks whose X-Forwarded-For is believed (empty: the peer is the client).
        self.trusted_proxies = trusted_networks(config["TRUSTED_PROXIES"])
        self.audit = Audit(session, config["AUDIT_BATCH_SECONDS"])
        #: The one Reads of the app (a kept pooled connection per thread), shared by every
        #: service that reads on the token path.
        self.reads = reads = Reads(session)
        self.accounts = Accounts(session, self.hasher, self.audit, reads,
                                 CredentialCache(config["CREDENTIAL_CACHE_SECONDS"]))
        self.grants = Grants(session, self.audit)
        #: Organisations, their owners and teams.
        self.orgs = Organizations(session, self.audit)
        self.repos = Repositories(session, self.audit, config["DEFAULT_VISIBILITY"])
        self.refresh_tokens = RefreshTokens(session, self.audit, reads,
                                            config["REFRESH_TOKEN_DAYS"])
        self.access_tokens = AccessTokens(session, self.audit, reads)
        #: The signed-in browsers of the web pages.
        self.web_sessions = WebSessions(session, self.audit, config["WEB_SESSION_IDLE_SECONDS"],
                                        config["WEB_SESSION_MAX_SECONDS"])
        self.throttle = LoginThrottle(
            failure_store(config, session, reads), account_limit=config["LOCKOUT_ATTEMPTS"],
            address_limit=config["LOCKOUT_ADDRESS_ATTEMPTS"], window=config["LOCKOUT_WINDOW"])
        #: Authentication: credentials to a Subject.
        self.credentials = Credentials(self.accounts, self.access_tokens, self.refresh_tokens,
                                       self.throttle, self.audit)
        #: Authorization: a Subject's requested scopes to granted actions.
        self.authorizer = Authorizer(reads, self.repos)
        #: What the registry holds (tags, pushes, pulls), and the notifications' writer.
        self.catalog = Catalog(session, self.audit, self.repos)
        self.events = EventRecorder(session, self.audit, config["DEFAULT_VISIBILITY"])
        #: The secret the registry's notifications carry (read again when the file changes).
        self.notification_secret = SecretFile(self.certs.notification_secret)
        self._issuer: TokenIssuer | None = None
        self._lock = threading.Lock()

    @property
    def issuer(self) -> TokenIssuer:
        """The token issuer; raises CertificateError when the signing key is unusable."""
        if self._issuer is None:
            with self._lock:
                if self._issuer is None:
                    self._issuer = self.load_issuer()
        return self._issuer

    def load_issuer(self) -> TokenIssuer:
        """A token issuer with the active signing key (``token-signing-key.pem``).

        Raises CertificateError when the key is unsafe (group or others may read it) or
        unusable. Logs a warning when ``rootcertbundle.pem``/``jwks.json`` do not publish the
        signing keys with KID_FORMAT kids: a registry that reads them may refuse tokens.
        """
        check_private_key_file(self.certs.signing_key)
        kid_format = self.config["KID_FORMAT"]
        key = load_signing_key(self.certs.signing_key.read_bytes(),
                               self.certs.signing.read_bytes(), kid_format)
        try:
            problems = unpublished(self.certs, read_key_set(self.certs, kid_format), kid_format)
        except CertificateError as e:
            problems = [e.message]
        for problem in problems:
            log.warning("%s; run `authsvc certs publish` and restart the registry", problem)
        return TokenIssuer(key, self.config["ISSUER"], self.config["TOKEN_TTL"],
                           include_x5c=self.config["TOKEN_X5C"],
                           cache_seconds=self.config["TOKEN_CACHE_SECONDS"])

    @property
    def realm(self) -> str:
        return f"{self.config['PUBLIC_URL']}/token"

    @property
    def registry_ca(self) -> Path | None:
        """The CA file that vouches for the registry (REGISTRY_CA, else authsvc's own CA when
        it exists); None: the system's."""
        if self.config["REGISTRY_CA"]:
            return Path(self.config["REGISTRY_CA"])
        return self.certs.ca if self.certs.ca.exists() else None

    def registry_client(self, purpose: str) -> "RegistryClient":
        """A client of the registry at REGISTRY_URL whose tokens authsvc signs for itself, with
        the subject ``authsvc:<purpose>`` (no user name has a colon), each one audited
        (``registry.token``). Raises RegistryNotConfigured when REGISTRY_URL is not set."""
        from authsvc.registry.client import RegistryClient

        url = self.config["REGISTRY_URL"]
        if not url:
            raise RegistryNotConfigured("REGISTRY_URL is not set: authsvc does not know where the "
                              "registry is (set it, or run `authsvc registry-config`)")
        subject, service = f"authsvc:{purpose}", self.config["SERVICES"][0]

        def mint(scopes: "Sequence[Scope]") -> str:
            grants = [(scope, scope.actions) for scope in scopes]
            issued = self.issuer.issue(subject, service, grants)
            text = " ".join(f"{s.type}:{s.name}:{','.join(sorted(s.actions))}" for s in scopes)
            self.audit.record(Event("registry.token", target=url, service=service,
                                    requested=text, granted=text, detail=purpose),
                              actor=subject)
            return issued.token

        return RegistryClient(url, ca_file=self.registry_ca, mint=mint)


#: Where ``create_app`` keeps an app's Services (``app.extensions``).
EXTENSION = "authsvc"


def services_of(app: "Flask") -> Services:
    """The Services of ``app`` (``create_app`` installed them)."""
    found = app.extensions[EXTENSION]
    assert isinstance(found, Services), found  # noqa: S101 - only create_app puts them there
    return found

"""authsvc as a client of the registry's v2 API: the catalog, tags, manifests and deletes.

Every call carries a bearer token that holds exactly the scopes it needs (``registry:catalog:*``
for the catalog, ``pull`` to read a repository, ``delete`` to delete a manifest: the registry
checks DELETE against ``delete`` alone, PROTOCOL §1 row 10), minted by ``mint`` and kept per
scope set for half its lifetime. Network errors, 5xx answers and anything unexpected raise
RegistryUnavailable, whose one-line message names the registry's URL and never a token.
"""

import hashlib
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import jwt
import requests

from authsvc.core.registry_events import MANIFEST_MEDIA_TYPES
from authsvc.core.scopes import Scope, is_valid_path
from authsvc.errors import AuthsvcError, InvalidName, RegistryNotConfigured
from authsvc.registry.references import (
    ManifestInfo,
    is_digest,
    validate_digest,
    validate_tag,
)

Mint = Callable[[Sequence[Scope]], str]

#: Manifest types asked for, most wanted first (schema 1 last: only when nothing else exists).
ACCEPT = ", ".join(sorted(MANIFEST_MEDIA_TYPES, key=lambda t: ("v1+" in t, t)))
INDEX_MEDIA_TYPES = frozenset({
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
})
#: How many nested indexes are followed when an index is sized.
_MAX_DEPTH = 2
#: Catalog pages followed at most (a registry that links forever must not hang a sync).
_MAX_PAGES = 100_000


class RegistryUnavailable(AuthsvcError):
    """The registry could not be reached, failed (5xx) or answered something unexpected."""

    status = 502
    code = "REGISTRY_UNAVAILABLE"


def _reference(reference: str) -> str:
    """A tag or a digest; raises InvalidName for anything else (it goes into a URL path)."""
    return reference if is_digest(reference) else validate_tag(reference)


def _repository(name: str) -> str:
    if not is_valid_path(name):
        raise InvalidName(f"invalid repository name {name[:300]!r}")
    return name


def _system_trust() -> str | bool:
    """The system's CA file (or folder); True (requests' own bundle) when there is none."""
    paths = ssl.get_default_verify_paths()
    return paths.cafile or paths.capath or True


def _error_codes(response: requests.Response) -> set[str]:
    """The registry error codes in ``response``'s body (none when it has no error body)."""
    try:
        body = response.json()
    except ValueError:
        return set()
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return set()
    return {str(e.get("code")) for e in errors if isinstance(e, dict)}


class _Tokens:
    """Bearer tokens per scope set, each kept for half its lifetime."""

    def __init__(self, mint: Mint, clock: Callable[[], float]) -> None:
        self.mint = mint
        self.clock = clock
        self._kept: dict[frozenset[str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, scopes: Sequence[Scope]) -> str:
        key = frozenset(str(s) for s in scopes)
        now = self.clock()
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept[1] > now:
                return kept[0]
        token = self.mint(scopes)
        with self._lock:
            self._kept[key] = (token, now + _lifetime(token) / 2)
        return token


def _lifetime(token: str) -> float:
    """Seconds from ``iat`` to ``exp`` of ``token`` (0 when unreadable: not kept)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        return max(0.0, float(claims["exp"]) - float(claims["iat"]))
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return 0.0


class RegistryClient:
    """A small client of one registry's v2 API over HTTPS.

    ``ca_file`` vouches for the registry's certificate (None: the system's CAs); ``mint``
    returns a bearer token holding exactly the scopes it is given; ``page_size`` is the ``n``
    asked of the catalog (a registry whose ``catalog.maxentries`` is smaller gets no ``n``).
    """

    def __init__(self, base_url: str, *, ca_file: Path | None, mint: Mint,
                 timeout: float = 10.0, page_size: int = 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "https" or not parts.netloc:
            raise RegistryNotConfigured(f"the registry URL must be https://host[:port], not "
                                        f"{base_url[:200]!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.page_size = page_size
        self._tokens = _Tokens(mint, clock)
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy, .netrc or CA bundle from the environment
        self._session.verify = str(ca_file) if ca_file is not None else _system_trust()

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    # -- requests -----------------------------------------------------------------------

    def _send(self, method: str, url: str, scopes: Sequence[Scope],
              headers: dict[str, str] | None = None) -> requests.Response:
        """One request with a token for ``scopes``. Raises RegistryUnavailable on network
        errors, 5xx, and 401/403 (the registry refused authsvc's token)."""
        token = self._tokens.get(scopes)
        path = url[len(self.base_url):] if url.startswith(self.base_url) else url
        try:
            response = self._session.request(
                method, url, timeout=self.timeout, allow_redirects=False,
                headers={**(headers or {}), "Authorization": f"Bearer {token}"})
        except requests.RequestException as e:
            ssl_error = isinstance(e, requests.exceptions.SSLError)
            hint = ": does REGISTRY_CA vouch for it?" if ssl_error else ""
            raise RegistryUnavailable(f"the registry at {self.base_url} cannot be reached "
                                      f"({type(e).__name__}{hint})") from None
        if response.status_code >= 500 or response.status_code in (401, 403):
            raise self._unexpected(method, path, response)
        return response

    def _unexpected(self, method: str, path: str,
                    response: requests.Response) -> RegistryUnavailable:
        codes = ",".join(sorted(_error_codes(response))) or "no error code"
        hint = (" (does it trust authsvc's signing certificate?)"
                if response.status_code == 401 else "")
        return RegistryUnavailable(
            f"the registry at {self.base_url} answered {method} {path[:200]} with "
            f"{response.status_code} ({codes[:100]}){hint}")

    def _json(self, method: str, path: str, response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RegistryUnavailable(f"the registry at {self.base_url} answered {method} "
                                      f"{path[:200]} with something that is not a JSON object")
        return body

    def _next_url(self, response: requests.Response) -> str | None:
        """The ``Link: <…>; rel="next"`` URL, on this registry only; None at the end."""
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        url = urljoin(self.base_url + "/", link)
        if not url.startswith(self.base_url + "/"):
            raise RegistryUnavailable(f"the registry at {self.base_url} linked to another "
                                      "host")
        return url

    # -- the API ------------------------------------------------------------------------

    def repositories(self) -> Iterator[str]:
        """Every repository name in the registry's catalog, following its pages.

        Raises RegistryUnavailable."""
        scopes = [Scope("registry", "catalog", frozenset({"*"}))]
        url: str | None = f"{self.base_url}/v2/_catalog?n={self.page_size}"
        for _ in range(_MAX_PAGES):
            if url is None:
                return
            response = self._send("GET", url, scopes)
            if (response.status_code == 400 and "?n=" in url
                    and "PAGINATION_NUMBER_INVALID" in _error_codes(response)):
                url = f"{self.base_url}/v2/_catalog"  # n above catalog.maxentries
                continue
            if response.status_code != 200:
                raise self._unexpected("GET", "/v2/_catalog", response)
            names = self._json("GET", "/v2/_catalog", response).get("repositories") or []
            if not isinstance(names, list):
                raise RegistryUnavailable(f"the registry at {self.base_url} sent a catalog "
                                          "without a list of repositories")
            yield from (n for n in names if isinstance(n, str))
            url = self._next_url(response) if names else None

    def tags(self, name: str) -> list[str]:
        """The tags of repository ``name`` ([] when the registry does not know it or it has
        none). Raises InvalidName, RegistryUnavailable."""
        scopes = self._pull(_repository(name))
        url: str | None = f"{self.base_url}/v2/{name}/tags/list"
        found: list[str] = []
        while url is not None:
            response = self._send("GET", url, scopes)
            if response.status_code == 404 and "NAME_UNKNOWN" in _error_codes(response):
                return []
            if response.status_code != 200:
                raise self._unexpected("GET", f"/v2/{name}/tags/list", response)
            tags = self._json("GET", f"/v2/{name}/tags/list", response).get("tags") or []
            if not isinstance(tags, list):
                raise RegistryUnavailable(f"the registry at {self.base_url} sent the tags of "
                                          f"{name} not as a list")
            found.extend(t for t in tags if isinstance(t, str))
            url = self._next_url(response) if tags else None
        return sorted(set(found))

    def digest(self, name: str, reference: str) -> str | None:
        """The digest of ``name:reference`` (a tag or a digest) from a HEAD request, or None
        when the registry does not know it. Raises InvalidName, RegistryUnavailable."""
        path = f"/v2/{_repository(name)}/manifests/{_reference(reference)}"
        response = self._send("HEAD", self.base_url + path, self._pull(name),
                              {"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._unexpected("HEAD", path, response)
        found = response.headers.get("Docker-Content-Digest")
        if found:
            return found
        whole = self._manifest(name, reference)  # a registry that sends no digest header
        return None if whole is None else whole[0]

    def manifest(self, name: str, reference: str) -> ManifestInfo | None:
        """The manifest ``name:reference`` (a tag or a digest): its digest, media type and
        image size; None when the registry knows no such repository or manifest. Raises
        InvalidName, RegistryUnavailable."""
        found = self._manifest(name, reference)
        if found is None:
            return None
        digest, media_type, body = found
        return ManifestInfo(digest, media_type, sum(self._blobs(name, media_type, body).values()))

    def delete_manifest(self, name: str, digest: str) -> bool:
        """Delete the manifest ``digest`` of ``name`` (the registry untags every tag that
        points to it); False when the registry does not know it. Raises InvalidName,
        InvalidRequest for a malformed digest, RegistryUnavailable (also when the registry
        does not allow deletes: ``storage.delete.enabled``)."""
        path = f"/v2/{_repository(name)}/manifests/{validate_digest(digest)}"
        scopes = [Scope("repository", name, frozenset({"delete"}))]
        response = self._send("DELETE", self.base_url + path, scopes)
        if response.status_code in (200, 202, 204):
            return True
        if response.status_code == 404:
            return False
        if response.status_code == 405:
            raise RegistryUnavailable(f"the registry at {self.base_url} does not allow deletes "
                                      "(set storage.delete.enabled: true in its config.yml)")
        raise self._unexpected("DELETE", path, response)

    def _pull(self, name: str) -> list[Scope]:
        return [Scope("repository", name, frozenset({"pull"}))]

    def _manifest(self, name: str, reference: str) -> tuple[str, str, dict[str, Any]] | None:
        """(digest, media type, parsed body) of a manifest, or None when unknown."""
        path = f"/v2/{_repository(name)}/manifests/{_reference(reference)}"
        response = self._send("GET", self.base_url + path, self._pull(name), {"Accept": ACCEPT})
        if response.status_code == 404 and _error_codes(response) & {
                "MANIFEST_UNKNOWN", "NAME_UNKNOWN"}:
            return None
        if response.status_code != 200:
            raise self._unexpected("GET", path, response)
        body = self._json("GET", path, response)
        digest = (response.headers.get("Docker-Content-Digest")
                  or "sha256:" + hashlib.sha256(response.content).hexdigest())
        media_type = (response.headers.get("Content-Type", "").split(";")[0].strip()
                      or str(body.get("mediaType", "")))
        return digest, media_type, body

    def _blobs(self, name: str, media_type: str, body: dict[str, Any],
               depth: int = 0) -> dict[str, int]:
        """Blob digest → size of the config and layers ``body`` refers to, through an
        index's platform manifests (fetched by digest; missing ones are skipped)."""
        kind = media_type or str(body.get("mediaType", ""))
        if kind in INDEX_MEDIA_TYPES or (not kind and "manifests" in body):
            blobs: dict[str, int] = {}
            for child in _descriptors(body.get("manifests")):
                if depth >= _MAX_DEPTH:
                    break
                found = self._manifest(name, child[0]) if is_digest(child[0]) else None
                if found is not None:
                    blobs.update(self._blobs(name, found[1], found[2], depth + 1))
            return blobs
        descriptors = _descriptors([body.get("config")]) + _descriptors(body.get("layers"))
        return dict(descriptors)


def _descriptors(raw: object) -> list[tuple[str, int]]:
    """(digest, size) of each well-formed descriptor in the JSON list ``raw``."""
    if not isinstance(raw, list):
        return []
    found = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        digest, size = item.get("digest"), item.get("size")
        if isinstance(digest, str) and isinstance(size, int) and not isinstance(size, bool) \
                and size >= 0:
            found.append((digest, size))
    return found

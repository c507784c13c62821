"""The registry's ``WWW-Authenticate`` challenges, read, and the verdicts on them: does the
registry send clients to authsvc (``/v2/`` without a token), and does it accept a token authsvc
signed (``/v2/_catalog`` with one). Pure.

distribution answers a request without a token, or with one it refuses, with ``401`` and
``Bearer realm="…",service="…"[,scope="…"][,error="invalid_token"]``
(``registry/auth/token/accesscontroller.go``). Why it refused a token is only in its log
(``token.go``: ``token from untrusted issuer``, ``token intended for another audience``,
``unable to verify certificate chain``, ``token signed by untrusted key``, ``token not to be
used after/before``): from outside, a wrong issuer, a stale ``rootcertbundle`` and a clock
beyond the leeway look the same.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from authsvc.diagnosis.findings import Finding, fail, ok

#: distribution's ``Leeway`` (``registry/auth/token/token.go``): added to ``exp`` and taken
#: from ``nbf`` when the registry checks a token's times.
REGISTRY_LEEWAY = 60

_PARAM = re.compile(r'\s*([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)')


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: its scheme (lower case) and parameters."""

    scheme: str
    params: dict[str, str]


def parse_challenge(header: str | None) -> Challenge | None:
    """The challenge in ``header`` (the first one, its parameters by name); None when there
    is no header or no scheme."""
    if not header or not header.strip():
        return None
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if match is None or match.end() == position:
            break
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare or ""
        params[match.group(1).lower()] = value
        position = match.end()
    return Challenge(scheme.lower(), params)


def challenge_verdict(status: int, header: str | None, *, url: str, realm: str,
                      services: Sequence[str]) -> Finding:
    """Whether the registry at ``url`` answered ``/v2/`` with a Bearer challenge whose realm is
    ``realm`` and whose service is one of ``services``."""
    check = "registry"
    if status == 200:
        return fail(check, f"{url}/v2/ lets anyone in (200 without a token): the registry has "
                    "no auth.token section; configure it with `authsvc registry-config`")
    challenge = parse_challenge(header)
    if status != 401 or challenge is None:
        return fail(check, f"{url}/v2/ answered {status} without a token, not 401 with a Bearer "
                    "challenge: is this the registry (REGISTRY_URL, --registry), configured by "
                    "`authsvc registry-config`?")
    if challenge.scheme != "bearer":
        return fail(check, f"{url}/v2/ asks for {challenge.scheme.capitalize()} "
                    "authentication, not a Bearer token: replace the registry's auth section "
                    "with the auth.token one `authsvc registry-config` prints")
    found_realm = challenge.params.get("realm", "")
    found_service = challenge.params.get("service", "")
    if found_realm != realm:
        return fail(check, f"the registry sends clients for tokens to {found_realm!r}, but "
                    f"authsvc's realm is {realm!r} (PUBLIC_URL + /token): set auth.token.realm "
                    f"to {realm} in the registry's config.yml and restart it, or set PUBLIC_URL "
                    "to the address clients reach authsvc at")
    if found_service not in services:
        return fail(check, f"the registry names its service {found_service!r}, for which "
                    f"authsvc issues no token (SERVICES: {', '.join(services)}): set "
                    f"auth.token.service to {services[0]!r} in the registry's config.yml and "
                    "restart it, or add the name to SERVICES")
    return ok(check, f"{url}/v2/ sends clients to {realm} for tokens for the service "
              f"{found_service!r}, as authsvc expects (whether it expects authsvc's issuer "
              "shows only in the token check)")


def token_verdict(status: int, header: str | None, *, url: str, issuer: str, kid: str,
                  hint: str = "") -> Finding:
    """Whether the registry accepted a token authsvc signed for itself (``status`` of
    ``/v2/_catalog`` with it). ``hint`` narrows down a refusal when the registry's
    config.yml was read (see ``registry_file``)."""
    check = "token"
    if status == 200:
        return ok(check, f"the registry accepted a token authsvc signed (issuer {issuer!r}, "
                  f"key {kid}): it expects this issuer and trusts the active signing "
                  "certificate")
    challenge = parse_challenge(header)
    error = challenge.params.get("error", "") if challenge is not None else ""
    if status == 401 and error == "invalid_token":
        cause = hint or (
            f"its auth.token.issuer is not {issuer!r}, its rootcertbundle lacks the active "
            f"signing certificate (key {kid}; after `authsvc certs rotate`, restart the "
            "registry before `--activate`), or its clock is more than "
            f"{REGISTRY_LEEWAY} s off; its log says which ('token from untrusted issuer', "
            "'unable to verify certificate chain' or 'token signed by untrusted key', "
            "'token not to be used')")
        return fail(check, "the registry refused a token authsvc signed for itself "
                    f"(invalid_token): {cause}")
    if status == 401:
        return fail(check, f"the registry answered 401 to a token authsvc signed "
                    f"({error or 'no error given'}): it cannot read authsvc's tokens; compare "
                    "its auth.token section with what `authsvc registry-config` prints")
    return fail(check, f"the registry answered {status} to {url}/v2/_catalog with a token "
                "authsvc signed, not 200: see the registry's log")

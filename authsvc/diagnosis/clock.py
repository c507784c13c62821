"""Do the registry's clock and this host's agree within the registry's leeway. Pure.

authsvc stamps ``iat``/``nbf``/``exp`` with its own clock (``nbf`` 5 s back); the registry
checks them with its clock, allowing distribution's ``Leeway`` of 60 s on ``nbf`` and ``exp``
(``registry/auth/token/token.go``). The registry's clock is read from the ``Date`` header of
its answer (whole seconds).
"""

from datetime import datetime
from email.utils import parsedate_to_datetime

from authsvc.diagnosis.challenge import REGISTRY_LEEWAY
from authsvc.diagnosis.findings import Finding, fail, ok, warn

#: Above this difference (seconds) the check warns; above REGISTRY_LEEWAY it fails.
WARN_ABOVE = 30


def registry_time(date_header: str | None) -> datetime | None:
    """The time in an HTTP ``Date`` header; None when absent or unreadable."""
    if not date_header:
        return None
    try:
        moment = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else None


def clock_verdict(registry_now: datetime | None, local_now: datetime) -> Finding:
    """How far the registry's clock (``registry_now``, from its ``Date``) is from this host's
    at the moment it answered."""
    check = "clock"
    if registry_now is None:
        return warn(check, "the registry sent no readable Date header, so its clock cannot be "
                    f"compared: make sure both hosts run NTP (it allows {REGISTRY_LEEWAY} s)")
    skew = (registry_now - local_now).total_seconds()
    way = "ahead of" if skew > 0 else "behind"
    size = abs(skew)
    if size > REGISTRY_LEEWAY:
        return fail(check, f"the registry's clock is {size:.0f} s {way} this host's, more than "
                    f"the {REGISTRY_LEEWAY} s it allows on a token's nbf and exp, so it refuses "
                    "fresh tokens: synchronise both clocks (NTP)")
    if size > WARN_ABOVE:
        return warn(check, f"the registry's clock is {size:.0f} s {way} this host's, within "
                    f"the {REGISTRY_LEEWAY} s it allows on a token's nbf and exp but close: "
                    "synchronise both clocks (NTP)")
    return ok(check, f"the registry's clock is within {max(size, 1):.0f} s of this host's (it "
              f"allows {REGISTRY_LEEWAY} s on a token's nbf and exp)")

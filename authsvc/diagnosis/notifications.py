"""Do the registry's notifications reach authsvc. Pure.

Two things are observed. authsvc's events endpoint must take an authenticated empty envelope
(``{"events": []}`` with the current notification secret: it records nothing). Then a real
event: authsvc pulls the manifest of a tag it knows (with a token it signs for itself, subject
``authsvc:doctor``, which authsvc never counts as a pull) and waits for the registry's
notification of that pull to be recorded. With no tag known yet there is nothing to pull, and
delivery shows only after the next push (in ``authsvc repo list``).
"""

from dataclasses import dataclass

from authsvc.diagnosis.findings import Finding, fail, ok, skip


@dataclass(frozen=True)
class EventProbe:
    """What happened: ``endpoint_status`` of the empty envelope (None: ``endpoint_error``),
    ``pulled`` the ``name:tag`` pulled ("" when none), ``pull_status`` its answer,
    ``arrived_after`` seconds until an event was recorded (None: none within ``waited``)."""

    endpoint_url: str
    endpoint_status: int | None
    endpoint_error: str = ""
    pulled: str = ""
    pull_status: int = 0
    arrived_after: float | None = None
    waited: float = 0.0


def not_configured(reason: str) -> Finding:
    return skip("notifications", f"not checked: {reason}")


def notification_verdict(probe: EventProbe) -> Finding:
    """Whether the endpoint answers and the registry delivered the probe's event."""
    check, url = "notifications", probe.endpoint_url
    status = probe.endpoint_status
    if status is None:
        return fail(check, f"authsvc's events endpoint {url} cannot be reached "
                    f"({probe.endpoint_error}), so neither can the registry reach it: check "
                    "PUBLIC_URL and that `authsvc serve` runs")
    if status == 401:
        return fail(check, f"{url} refused the current notification secret: the running "
                    "authsvc reads another certificate folder (AUTHSVC_CERTS_DIR) than this "
                    "command; run both with the same one")
    if status == 503:
        return fail(check, f"{url} answered 503: authsvc cannot read its notification secret "
                    "or store events; its log says which")
    if status != 200:
        return fail(check, f"{url} answered {status} to an empty envelope, not 200: is "
                    "PUBLIC_URL the address of authsvc?")
    if not probe.pulled or probe.pull_status != 200:
        why = (f"pulling {probe.pulled} answered {probe.pull_status}" if probe.pulled
               else "no image is recorded yet")
        return ok(check, f"{url} takes the registry's secret; whether the registry delivers "
                  f"its events shows only after the next push ({why}): `authsvc repo list` "
                  "then lists it")
    if probe.arrived_after is None:
        return fail(check, f"the registry did not deliver the event of a pull of "
                    f"{probe.pulled} within {probe.waited:.0f} s: its log says why ('error "
                    "posting'); it must post to " + url + " with the current secret "
                    "(`authsvc registry-config` prints it) and trust authsvc's CA "
                    "(SSL_CERT_FILE=certs/ca.pem)")
    return ok(check, f"the registry delivered the event of a pull of {probe.pulled} to "
              f"{url} in {probe.arrived_after:.1f} s")

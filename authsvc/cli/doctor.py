"""``authsvc doctor``: check a running set-up end to end, one line per check (see
``authsvc.diagnosis``); exit status 0 only when none fails."""

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import click
from sqlalchemy import func, select

from authsvc.cli.base import app_state, cli, command
from authsvc.core.scopes import Scope
from authsvc.db.audit import Event
from authsvc.db.models import RegistryEventSeen, Repository, Tag, db, engine_of
from authsvc.db.services import Services
from authsvc.diagnosis import Notifications, Setup, passed, run_checks
from authsvc.diagnosis.checks import Mint
from authsvc.diagnosis.findings import fail
from authsvc.errors import CertificateError
from authsvc.pki.certs import load_certificate
from authsvc.pki.notification_secret import read_secrets

#: The subject of the tokens the doctor signs for itself (no user name has a colon).
SUBJECT = "authsvc:doctor"


def _known_tags() -> list[tuple[str, str]]:
    """(repository, tag) of the most recently pushed tags authsvc knows, at most three."""
    query = (select(Repository.name, Tag.name).join(Tag, Tag.repository_id == Repository.id)
             .order_by(Tag.pushed_at.desc().nulls_last(), Tag.id.desc()).limit(3))
    with engine_of(db.session).connect() as connection:
        return [(str(name), str(tag)) for name, tag in connection.execute(query)]


def _latest_event() -> datetime | None:
    """When the last registry notification was recorded (a fresh read each time)."""
    with engine_of(db.session).connect() as connection:
        found = connection.execute(select(func.max(RegistryEventSeen.received_at))).scalar()
    return found if isinstance(found, datetime) else None


def _minter(state: Services, registry_url: str) -> Mint:
    """Sign tokens for ``SUBJECT`` holding exactly the scopes given, each one audited
    (``registry.token``), as ``Services.registry_client`` does."""
    issuer = state.issuer

    def mint(service: str, scopes: Sequence[Scope]) -> str:
        text = " ".join(f"{s.type}:{s.name}:{','.join(sorted(s.actions))}" for s in scopes)
        state.audit.record(Event("registry.token", target=registry_url, service=service,
                                 requested=text, granted=text, detail="doctor"), actor=SUBJECT)
        return issuer.issue(SUBJECT, service, [(s, s.actions) for s in scopes]).token

    return mint


def _notifications(state: Services, registry_url: str) -> tuple[Notifications | None, str]:
    path = state.certs.notification_secret
    if not path.exists():
        return None, f"no notification secret ({path}); `authsvc registry-config` makes one"
    try:
        secret = read_secrets(path).current
    except CertificateError as e:
        return None, e.message
    url = f"{state.config['PUBLIC_URL']}/api/v1/registry/events"
    return Notifications(url, secret, _known_tags, _latest_event), ""


@command(cli, "doctor")
@click.option("--registry", "registry_url", default=None, metavar="URL",
              help="The registry to check. Default: REGISTRY_URL.")
@click.option("--registry-config", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE",
              help="The registry's config.yml: also compare its auth.token section and "
                   "rootcertbundle file with authsvc's.")
def doctor_command(registry_url: str | None, registry_config: Path | None) -> None:
    """Check a running set-up end to end: the registry's challenge, the realm as clients
    reach it, a token authsvc signs, the clocks, the notifications. One line per check;
    exit status 0 only when none fails (warnings pass)."""
    state = app_state()
    url = (registry_url or state.config["REGISTRY_URL"] or "").rstrip("/")
    if not url:
        click.echo(fail("registry", "REGISTRY_URL is not set and no --registry was given: "
                        "authsvc does not know where the registry is").line)
        raise SystemExit(1)
    issuer = state.issuer
    active = issuer.key.certificate
    next_path = state.certs.signing_next
    notifications, off = _notifications(state, url)
    setup = Setup(
        registry_url=url, registry_ca=state.registry_ca, realm=state.realm,
        services=tuple(state.config["SERVICES"]), issuer=state.config["ISSUER"],
        kid=issuer.key.kid, client_cas=(state.certs.ca,) if state.certs.ca.exists() else (),
        mint=_minter(state, url), active_certificate=active,
        next_certificate=load_certificate(next_path) if next_path.exists() else None,
        registry_config=registry_config, notifications=notifications, notifications_off=off)
    findings = run_checks(setup)
    for finding in findings:
        click.echo(finding.line)
    if not passed(findings):
        raise SystemExit(1)

"""Certificate commands: ``certs`` (init, rotate, prune, status, publish), ``registry-config``."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from flask import current_app

from authsvc.cli.base import app_state, cli, command
from authsvc.cli.registry import registry_group
from authsvc.errors import CertificateError
from authsvc.pki import key_set as keys
from authsvc.pki.certs import (
    CertPaths,
    KeyType,
    bootstrap,
    signing_public_key,
    trusted_certificates,
    write_trust_files,
)
from authsvc.pki.notification_secret import ensure_secret, rotate_secret
from authsvc.pki.registry_config import default_registry_url, registry_config, remember_registry_url
from authsvc.pki.signing_keys import KidFormat, algorithm_for


@cli.group("certs")
def certs_group() -> None:
    """Certificates: the CA, HTTPS certificates and the token-signing key."""


def _settings() -> tuple[CertPaths, KidFormat]:
    state = app_state()
    return state.certs, state.config["KID_FORMAT"]


@command(certs_group, "init")
@click.option("--host", "hosts", multiple=True, required=True,
              help="DNS name or IP address for the HTTPS certificates; repeat for more.")
@click.option("--force", is_flag=True, help="Replace existing certificates and keys.")
@click.option("--key-type", type=click.Choice(["ec", "rsa"]), default="ec", show_default=True,
              help="Token-signing key: EC P-256 (ES256) or RSA 2048 (RS256).")
def certs_init_command(hosts: tuple[str, ...], force: bool, key_type: KeyType) -> None:
    """Create the CA, HTTPS certificates for authsvc and the registry, and the signing key."""
    paths, kid_format = _settings()
    written = bootstrap(paths.root, hosts, force=force, key_type=key_type,
                        kid_format=kid_format)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"\nClients (docker, podman, skopeo) trust: {paths.ca}")
    click.echo(f"The registry trusts token signatures from: {paths.bundle} (or {paths.jwks})")
    click.echo("Restart the registry and authsvc to use new certificates.")


def _describe(key: keys.TrustedKey) -> str:
    text = f"{key.role} key {key.kid} ({key.algorithm})"
    if key.trusted_until is not None:
        text += f", trusted until {keys.format_time(key.trusted_until)}"
    return text


def _listing(paths: CertPaths, key_set: keys.KeySet) -> str:
    return (f"{paths.bundle.name} and {paths.jwks.name} list: "
            + "; ".join(_describe(k) for k in key_set.keys))


@command(certs_group, "rotate")
@click.option("--activate", is_flag=True,
              help="Second step: sign with the next key from now on (after the registry "
                   "was restarted with it).")
@click.option("--key-type", type=click.Choice(["ec", "rsa"]), default=None,
              help="Type of the next key. Default: that of the active key.")
@click.option("--grace", type=click.IntRange(0, 30 * 86400), default=None, metavar="SECONDS",
              help="With --activate: how long the previous key stays trusted. "
                   "Default: TOKEN_TTL + 60.")
@click.option("--force", is_flag=True,
              help="Replace a next key that is waiting, or stop trusting a previous key "
                   "before its grace is over.")
def certs_rotate_command(activate: bool, key_type: KeyType | None, grace: int | None,
                         force: bool) -> None:
    """Rotate the token-signing key in two steps, with no token refused in between.

    \b
    1. `authsvc certs rotate` writes the next key and publishes its certificate in
       rootcertbundle.pem and jwks.json; restart the registry.
    2. `authsvc certs rotate --activate` makes it the signing key; restart authsvc.
       The previous certificate stays published until its tokens have expired.
    """
    if activate and key_type is not None:
        raise click.UsageError("--key-type goes with the first step, not with --activate")
    if not activate and grace is not None:
        raise click.UsageError("--grace goes with --activate")
    if activate:
        _activate(grace, force)
    else:
        _rotate(key_type, force)


def _rotate(key_type: KeyType | None, force: bool) -> None:
    paths, kid_format = _settings()
    change = keys.rotate(paths, kid_format, key_type=key_type, force=force)
    click.echo(f"wrote {paths.signing_next} and {paths.signing_next_key.name}")
    if change.dropped is not None:
        click.echo(f"stopped trusting the {_describe(change.dropped)}")
    click.echo(_listing(paths, change.key_set))
    click.echo("\nRestart the registry now so it trusts the new key; then run "
               "`authsvc certs rotate --activate`.")


def _activate(grace: int | None, force: bool) -> None:
    paths, kid_format = _settings()
    period = (keys.default_grace(app_state().config["TOKEN_TTL"]) if grace is None
              else timedelta(seconds=grace))
    change = keys.activate(paths, kid_format, grace=period, force=force)
    if change.dropped is not None:
        click.echo(f"stopped trusting the earlier {_describe(change.dropped)}")
    click.echo(f"the next key is now the active one: {change.key_set.active.kid}")
    click.echo(_listing(paths, change.key_set))
    click.echo("\nRestart authsvc now (every `authsvc serve` process): until it restarts, it "
               "keeps signing with the previous key.\nThe registry needs no restart: it already "
               "trusts both keys.")
    previous = change.key_set.get("previous")
    if previous is not None and previous.trusted_until is not None:
        click.echo(f"After {keys.format_time(previous.trusted_until)}, run `authsvc certs prune` "
                   "and restart the registry.")


@command(certs_group, "prune")
@click.option("--force", is_flag=True, help="Drop the previous key even before its grace is over.")
def certs_prune_command(force: bool) -> None:
    """Stop trusting the previous signing key once the tokens it signed have expired."""
    paths, kid_format = _settings()
    change = keys.prune(paths, kid_format, force=force)
    if change.dropped is None:
        click.echo("no previous key to drop")
        return
    click.echo(f"stopped trusting the {_describe(change.dropped)}; restart the registry so it "
               "forgets it too.")


@command(certs_group, "status")
def certs_status_command() -> None:
    """Show the signing keys the registry is told to trust and what to do next."""
    paths, kid_format = _settings()
    key_set = keys.read_key_set(paths, kid_format)
    now = datetime.now(UTC)
    for key in key_set.keys:
        line = (f"{key.role}\t{key.algorithm}\t{key.kid}\tcertificate valid until "
                f"{keys.format_time(key.certificate.not_valid_after_utc)}")
        if key.role == "previous":
            line += ("\ttrusted until " + keys.format_time(key.trusted_until)
                     if key.trusted_until else "\ttrusted until: unknown (prune with --force)")
        click.echo(line)
    for problem in keys.unpublished(paths, key_set, kid_format):
        click.echo(f"warning: {problem}; run `authsvc certs publish` and restart the registry")
    previous = key_set.get("previous")
    if key_set.get("next") is not None:
        click.echo("next step: restart the registry (if not done since `certs rotate`), then "
                   "`authsvc certs rotate --activate`")
    elif previous is not None and not previous.in_grace(now):
        click.echo("next step: `authsvc certs prune`, then restart the registry")


@command(certs_group, "publish")
def certs_publish_command() -> None:
    """Rewrite rootcertbundle.pem and jwks.json from the signing certificates (after changing
    KID_FORMAT, or to repair them)."""
    paths, kid_format = _settings()
    for path in write_trust_files(paths, kid_format):
        click.echo(f"wrote {path}")
    click.echo("Restart the registry so it reads them.")


def _signing_algorithms(paths: CertPaths) -> list[str]:
    """The algorithms of every published signing key; both portable ones when unreadable."""
    try:
        return sorted({algorithm_for(signing_public_key(cert))
                       for cert in trusted_certificates(paths)})
    except CertificateError:
        return ["ES256", "RS256"]


@command(cli, "registry-config")
@click.option("--registry-addr", required=True, metavar="HOST:PORT",
              help="Address the registry listens on (http.addr).")
@click.option("--realm", default=None, metavar="URL",
              help="Token realm clients are sent to. Default: PUBLIC_URL + /token.")
@click.option("--storage-dir", default="/var/lib/docker-registry", show_default=True,
              type=click.Path(path_type=Path), help="Where the registry stores images.")
@click.option("--registry-version", type=click.Choice(["2", "3"]), default="2",
              show_default=True,
              help="distribution major version: 3 adds the jwks file and signingalgorithms.")
@click.option("--notifications/--no-notifications", default=True, show_default=True,
              help="Have the registry tell authsvc about pushes, pulls and deletes.")
@click.option("--registry-url", default=None, metavar="URL",
              help="How authsvc reaches the registry (REGISTRY_URL). Default: https:// and the "
                   "address, with PUBLIC_URL's host for 0.0.0.0 or [::].")
def registry_config_command(registry_addr: str, realm: str | None, storage_dir: Path,
                            registry_version: str, notifications: bool,
                            registry_url: str | None) -> None:
    """Print a docker-registry config.yml that trusts this authsvc.

    \b
    It holds the notification secret: keep the file owner-only (chmod 600). Start the registry
    with SSL_CERT_FILE naming certs/ca.pem, so that it trusts authsvc's certificate when it
    posts its notifications. When REGISTRY_URL is not set, it is written to
    instance/config.py, so that `authsvc registry sync` and deletes find the registry.
    """
    state = app_state()
    version = int(registry_version)
    events = None
    if notifications:
        secrets, _ = ensure_secret(state.certs.notification_secret)
        events = (f"{state.config['PUBLIC_URL']}/api/v1/registry/events", secrets.current)
    click.echo(registry_config(
        addr=registry_addr, realm=realm or state.realm, service=state.config["SERVICES"][0],
        issuer=state.config["ISSUER"], certs=state.certs, storage_dir=storage_dir.resolve(),
        registry_version=version,
        signing_algorithms=_signing_algorithms(state.certs) if version >= 3 else (),
        notifications=events), nl=False)
    url = registry_url or default_registry_url(registry_addr, state.config["PUBLIC_URL"])
    if state.config["REGISTRY_URL"]:
        if registry_url and registry_url.rstrip("/") != state.config["REGISTRY_URL"]:
            click.echo(f"authsvc: REGISTRY_URL is already {state.config['REGISTRY_URL']}; "
                       "kept it", err=True)
        return
    written = remember_registry_url(Path(current_app.instance_path), url)
    click.echo(f"authsvc: REGISTRY_URL = {url!r} written to {written}", err=True)


@command(registry_group, "rotate-secret")
@click.option("--grace", type=click.IntRange(0, 30 * 86400), default=3600, show_default=True,
              metavar="SECONDS", help="How long the previous secret is still accepted.")
@click.option("--force", is_flag=True, help="Replace a damaged secret file.")
def rotate_secret_command(grace: int, force: bool) -> None:
    """Make a new notification secret (the registry's notifications carry it).

    Then print the registry's configuration again (`authsvc registry-config`) and restart the
    registry; the previous secret is accepted until GRACE seconds have passed.
    """
    paths = app_state().certs
    value = rotate_secret(paths.notification_secret, timedelta(seconds=grace), force=force)
    click.echo(f"wrote a new notification secret to {paths.notification_secret}")
    if value.previous_until is not None:
        click.echo(f"the previous one is accepted until {keys.format_time(value.previous_until)}")
    click.echo("Print the registry configuration again (authsvc registry-config) and restart "
               "the registry.")

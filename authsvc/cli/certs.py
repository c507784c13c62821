"""Certificate commands: ``certs`` and ``registry-config``."""

from pathlib import Path

import click

from authsvc.certs import bootstrap
from authsvc.cli.base import app_state, cli, command
from authsvc.registry_config import registry_config


@cli.group("certs")
def certs_group() -> None:
    """Certificates: the CA, HTTPS certificates and the token-signing key."""


@command(certs_group, "init")
@click.option("--host", "hosts", multiple=True, required=True,
              help="DNS name or IP address for the HTTPS certificates; repeat for more.")
@click.option("--force", is_flag=True, help="Replace existing certificates and keys.")
@click.option("--key-type", type=click.Choice(["ec", "rsa"]), default="ec", show_default=True,
              help="Token-signing key: EC P-256 (ES256) or RSA 2048 (RS256).")
def certs_init_command(hosts: tuple[str, ...], force: bool, key_type: str) -> None:
    """Create the CA, HTTPS certificates for authsvc and the registry, and the signing key."""
    state = app_state()
    written = bootstrap(state.certs.root, hosts, force=force, key_type=key_type)  # type: ignore[arg-type]
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"\nClients (docker, podman, skopeo) trust: {state.certs.ca}")
    click.echo(f"The registry trusts token signatures from: {state.certs.bundle}")
    click.echo("Restart the registry and authsvc to use new certificates.")


@command(cli, "registry-config")
@click.option("--registry-addr", required=True, metavar="HOST:PORT",
              help="Address the registry listens on (http.addr).")
@click.option("--realm", default=None, metavar="URL",
              help="Token realm clients are sent to. Default: PUBLIC_URL + /token.")
@click.option("--storage-dir", default="/var/lib/docker-registry", show_default=True,
              type=click.Path(path_type=Path), help="Where the registry stores images.")
def registry_config_command(registry_addr: str, realm: str | None, storage_dir: Path) -> None:
    """Print a docker-registry config.yml that trusts this authsvc."""
    state = app_state()
    click.echo(registry_config(
        addr=registry_addr, realm=realm or state.realm, service=state.config["SERVICES"][0],
        issuer=state.config["ISSUER"], certs=state.certs, storage_dir=storage_dir.resolve()),
        nl=False)

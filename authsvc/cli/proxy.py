"""``authsvc proxy-config``: the nginx front of the registry that sends Docker's ``/v1/search``
and podman's ``/v2/_catalog`` to authsvc (``authsvc.registry.proxy_config``)."""

from pathlib import Path

import click
from cryptography import x509

from authsvc.cli.base import app_state, cli, command
from authsvc.pki.certs import load_certificate
from authsvc.registry.proxy_config import nginx_server_block, upstream

PATH = click.Path(dir_okay=False, path_type=Path)


@command(cli, "proxy-config")
@click.option("--listen", required=True, metavar="HOST:PORT",
              help="Where nginx listens with TLS: the address clients use for the registry.")
@click.option("--registry-upstream", required=True, metavar="URL",
              help="How nginx reaches the registry, e.g. https://127.0.0.1:5000.")
@click.option("--authsvc-upstream", default=None, metavar="URL",
              help="How nginx reaches authsvc. Default: PUBLIC_URL.")
@click.option("--server-name", "server_names", multiple=True, metavar="NAME",
              help="nginx server_name; repeat for more. Default: the --listen host.")
@click.option("--certificate", type=PATH, default=None,
              help="nginx's TLS certificate. Default: the registry's (certs/registry.pem).")
@click.option("--key", type=PATH, default=None,
              help="Its private key. Default: the registry's (certs/registry-key.pem).")
@click.option("--upstream-ca", type=PATH, default=None,
              help="The CA both upstreams' certificates are checked against. "
                   "Default: authsvc's (certs/ca.pem).")
@click.option("--registry-ssl-name", default=None, metavar="NAME",
              help="DNS name the registry's certificate must hold (and SNI). Default: the "
                   "--registry-upstream host; for an IP address the first DNS name of "
                   "certs/registry.pem.")
@click.option("--authsvc-ssl-name", default=None, metavar="NAME",
              help="DNS name authsvc's certificate must hold (and SNI). Default: the "
                   "--authsvc-upstream host; for an IP address the first DNS name of "
                   "certs/authsvc.pem.")
def proxy_config_command(listen: str, registry_upstream: str, authsvc_upstream: str | None,
                         server_names: tuple[str, ...], certificate: Path | None,
                         key: Path | None, upstream_ca: Path | None,
                         registry_ssl_name: str | None, authsvc_ssl_name: str | None) -> None:
    """Print an nginx server block for the registry's address: /v2/ to the registry, /v1/
    (docker search) and /v2/_catalog (podman search; listing what the caller may pull) to
    authsvc.

    \b
    Put it in nginx's http {} (e.g. /etc/nginx/conf.d/registry.conf), run `nginx -t`, and
    reload nginx. Clients then use the --listen address as the registry's; the registry itself
    may listen on loopback only (its own, unfiltered catalog stays reachable at REGISTRY_URL,
    where `authsvc registry sync` reads it). List nginx in TRUSTED_PROXIES.
    """
    state = app_state()
    certs = state.certs
    authsvc = upstream(authsvc_upstream or state.config["PUBLIC_URL"], "--authsvc-upstream",
                       authsvc_ssl_name, _certificate_if_needed(authsvc_ssl_name, certs.authsvc))
    registry = upstream(registry_upstream, "--registry-upstream", registry_ssl_name,
                        _certificate_if_needed(registry_ssl_name, certs.registry))
    click.echo(nginx_server_block(
        listen=listen, server_names=server_names,
        certificate=(certificate or certs.registry).resolve(),
        key=(key or certs.registry_key).resolve(), ca=(upstream_ca or certs.ca).resolve(),
        authsvc=authsvc, registry=registry), nl=False)


def _certificate_if_needed(ssl_name: str | None, path: Path) -> x509.Certificate | None:
    """The upstream's certificate, read only when no name was given and it exists (its DNS
    names stand in for an IP address)."""
    return load_certificate(path) if ssl_name is None and path.exists() else None

"""``authsvc proxy-config``: the nginx server block in front of the registry passes the real
``nginx -t`` and holds what a registry behind nginx needs (``authsvc.registry.proxy_config``)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner

from authsvc.cli import cli
from authsvc.errors import InvalidRequest
from authsvc.pki.certs import CertPaths, load_certificate
from authsvc.registry.proxy_config import (
    Upstream,
    default_server_name,
    dns_names,
    listen_address,
    nginx_server_block,
    nginx_string,
    upstream,
)

NGINX = "/usr/sbin/nginx"
REGISTRY = Upstream("https://127.0.0.1:5000", "localhost")
#: nginx resolves upstream names when it loads its configuration: one that resolves here.
AUTHSVC = Upstream("https://localhost:5001", "localhost")


def wrapped(server_block: str, root: Path) -> Path:
    """A whole nginx.conf around ``server_block``, everything nginx writes kept in ``root``."""
    temp = "\n".join(f"    {kind}_temp_path {root / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = root / "nginx.conf"
    conf.write_text(f"pid {root / 'nginx.pid'};\nerror_log {root / 'error.log'};\n"
                    f"events {{}}\nhttp {{\n    access_log off;\n{temp}\n{server_block}}}\n")
    return conf


def nginx_test(server_block: str, root: Path) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on ``server_block`` wrapped in a minimal nginx.conf."""
    if not Path(NGINX).exists():
        pytest.skip(f"{NGINX} is not installed (Debian package nginx-light)")
    conf = wrapped(server_block, root)
    return subprocess.run([NGINX, "-t", "-q", "-e", str(root / "error.log"), "-p", str(root),
                           "-c", str(conf)], capture_output=True, text=True, check=False,
                          timeout=30)


def block(certs_dir: Path, **changes: object) -> str:
    paths = CertPaths(certs_dir)
    arguments: dict[str, object] = {
        "listen": "127.0.0.1:8443", "server_names": ["registry.example"],
        "certificate": paths.registry, "key": paths.registry_key, "ca": paths.ca,
        "authsvc": AUTHSVC, "registry": REGISTRY, **changes}
    return nginx_server_block(**arguments)  # type: ignore[arg-type]


def location(text: str, path: str) -> list[str]:
    """The directives of ``location path { … }``, one stripped line each, comments left out."""
    match = re.search(rf"location {re.escape(path)} {{\n(.*?)\n    }}", text, re.S)
    assert match is not None, text
    return [line.strip() for line in match.group(1).splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_the_block_passes_nginx_t(certs_dir: Path, tmp_path: Path) -> None:
    result = nginx_test(block(certs_dir), tmp_path)
    assert result.returncode == 0, result.stderr


PROXIED = ["proxy_http_version 1.1;", "proxy_ssl_verify on;", "proxy_ssl_server_name on;",
           "proxy_set_header Host $http_host;", "proxy_set_header X-Forwarded-Proto $scheme;",
           "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"]


def test_v2_goes_to_the_registry_with_what_it_needs(certs_dir: Path) -> None:
    v2 = location(block(certs_dir), "/v2/")
    for directive in [*PROXIED, "proxy_pass https://127.0.0.1:5000;",
                      f"proxy_ssl_trusted_certificate {CertPaths(certs_dir).ca};",
                      "proxy_ssl_name localhost;", "client_max_body_size 0;",
                      "chunked_transfer_encoding on;", "proxy_request_buffering off;",
                      "proxy_buffering off;", "proxy_read_timeout 900s;",
                      "proxy_send_timeout 900s;"]:
        assert directive in v2
    # the registry's Docker-Distribution-Api-Version header must reach clients
    assert not [line for line in v2 if "proxy_hide_header" in line]


def test_v1_goes_to_authsvc_verified(certs_dir: Path) -> None:
    v1 = location(block(certs_dir), "/v1/")
    for directive in [*PROXIED, "proxy_pass https://localhost:5001;",
                      f"proxy_ssl_trusted_certificate {CertPaths(certs_dir).ca};",
                      "proxy_ssl_name localhost;"]:
        assert directive in v1


def test_the_catalog_goes_to_authsvc_and_the_rest_of_v2_to_the_registry(
        certs_dir: Path, tmp_path: Path) -> None:
    """An exact-match location beats the /v2/ prefix in nginx: only /v2/_catalog (podman's
    search) reaches authsvc, every other /v2/ path the registry; the block passes nginx -t."""
    text = block(certs_dir)
    catalog = location(text, "= /v2/_catalog")
    for directive in [*PROXIED, "proxy_pass https://localhost:5001;",
                      f"proxy_ssl_trusted_certificate {CertPaths(certs_dir).ca};",
                      "proxy_ssl_name localhost;"]:
        assert directive in catalog
    assert "proxy_pass https://127.0.0.1:5000;" not in catalog
    assert re.findall(r"location (.*?) \{", text) == ["/v2/", "/v1/", "= /v2/_catalog", "/"]
    result = nginx_test(text, tmp_path)
    assert result.returncode == 0, result.stderr


def test_the_server_listens_with_tls_and_answers_the_rest_404(certs_dir: Path) -> None:
    text = block(certs_dir)
    paths = CertPaths(certs_dir)
    for directive in ["listen 127.0.0.1:8443 ssl;", "server_name registry.example;",
                      f"ssl_certificate {paths.registry};",
                      f"ssl_certificate_key {paths.registry_key};"]:
        assert f"\n    {directive}\n" in text
    assert location(text, "/") == [
        "default_type application/json;",
        """return 404 '{"errors":[{"code":"NOT_FOUND","message":"not found"}]}';"""]


def test_paths_with_spaces_and_quotes_are_quoted(certs_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / 'my "certs"'
    shutil.copytree(certs_dir, folder)
    paths = CertPaths(folder)
    text = block(certs_dir, certificate=paths.registry, key=paths.registry_key, ca=paths.ca)
    assert f'ssl_certificate "{tmp_path}/my \\"certs\\"/registry.pem";' in text
    result = nginx_test(text, tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("value", ["a$b", "line\nbreak", "", "tab\there"])
def test_words_nginx_would_misread_are_refused(value: str) -> None:
    with pytest.raises(InvalidRequest):
        nginx_string(value)


@pytest.mark.parametrize(("url", "name", "expected"), [
    ("https://registry.example:5000", None, Upstream("https://registry.example:5000",
                                                     "registry.example")),
    ("https://registry.example/", None, Upstream("https://registry.example:443",
                                                 "registry.example")),
    ("https://10.0.0.5:5000", "registry.internal", Upstream("https://10.0.0.5:5000",
                                                            "registry.internal")),
    ("https://[::1]:5000", "localhost", Upstream("https://[::1]:5000", "localhost")),
])
def test_upstreams(url: str, name: str | None, expected: Upstream) -> None:
    assert upstream(url, "--registry-upstream", name) == expected


def test_an_ip_upstream_is_checked_by_a_dns_name_of_its_certificate(certs_dir: Path) -> None:
    """nginx matches only DNS names: 127.0.0.1 in subjectAltName would never match."""
    certificate = load_certificate(CertPaths(certs_dir).registry)
    assert dns_names(certificate) == ["localhost"]
    assert upstream("https://127.0.0.1:5000", "x", None, certificate) == Upstream(
        "https://127.0.0.1:5000", "localhost")
    with pytest.raises(InvalidRequest, match="DNS name"):
        upstream("https://127.0.0.1:5000", "x")


@pytest.mark.parametrize(("url", "name"), [
    ("http://registry.example:5000", None), ("https://registry.example:5000/v2", None),
    ("https://user:pw@registry.example", None), ("https://registry.example?x=1", None),
    ("https://registry.example:99999", None), ("registry.example:5000", None),
    ("https://registry.example", "127.0.0.1"), ("https://registry.example", "bad name"),
    ("https://registry.example", "$host"),
])
def test_bad_upstreams_are_refused(url: str, name: str | None) -> None:
    with pytest.raises(InvalidRequest):
        upstream(url, "--registry-upstream", name)


@pytest.mark.parametrize(("listen", "expected", "server_name"), [
    ("127.0.0.1:443", "127.0.0.1:443", "127.0.0.1"),
    ("registry.example:5000", "registry.example:5000", "registry.example"),
    ("[::1]:8443", "[::1]:8443", "::1"),
    ("0.0.0.0:443", "0.0.0.0:443", "_"),
    ("*:443", "*:443", "_"),
    (":443", "443", "_"),
])
def test_listen_addresses(listen: str, expected: str, server_name: str) -> None:
    assert listen_address(listen) == expected
    assert default_server_name(listen) == server_name


@pytest.mark.parametrize("listen", ["443", "host", "host:0", "host:65536", "a b:1", "h:1;"])
def test_bad_listen_addresses_are_refused(listen: str) -> None:
    with pytest.raises(InvalidRequest):
        listen_address(listen)


def test_the_command_defaults_to_authsvcs_certificates_and_public_url(
        runner: FlaskCliRunner, certs_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["proxy-config", "--listen", "127.0.0.1:8443",
                                 "--registry-upstream", "https://127.0.0.1:5000"])
    assert result.exit_code == 0, result.output
    paths = CertPaths(certs_dir)
    assert f"ssl_certificate {paths.registry.resolve()};" in result.output
    assert f"ssl_certificate_key {paths.registry_key.resolve()};" in result.output
    assert "server_name 127.0.0.1;" in result.output
    assert "proxy_pass https://localhost:5001;" in location(result.output, "/v1/")
    assert "proxy_pass https://localhost:5001;" in location(result.output, "= /v2/_catalog")
    assert "proxy_ssl_name localhost;" in location(result.output, "/v2/")
    assert nginx_test(result.output, tmp_path).returncode == 0


def test_the_command_takes_every_option(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, [
        "proxy-config", "--listen", "0.0.0.0:443", "--server-name", "registry.example",
        "--server-name", "10.0.0.5", "--registry-upstream", "https://10.0.0.5:5000",
        "--registry-ssl-name", "registry.internal", "--authsvc-upstream",
        "https://auth.internal:5001", "--certificate", str(tmp_path / "c.pem"), "--key",
        str(tmp_path / "k.pem"), "--upstream-ca", str(tmp_path / "ca.pem")])
    assert result.exit_code == 0, result.output
    assert "server_name registry.example 10.0.0.5;" in result.output
    assert f"ssl_certificate {tmp_path / 'c.pem'};" in result.output
    assert "proxy_ssl_name registry.internal;" in location(result.output, "/v2/")
    assert "proxy_pass https://auth.internal:5001;" in location(result.output, "/v1/")
    assert "proxy_pass https://auth.internal:5001;" in location(result.output,
                                                                 "= /v2/_catalog")


@pytest.mark.parametrize(("args", "message"), [
    (["--listen", "127.0.0.1:8443"], "Missing option '--registry-upstream'"),
    (["--listen", "nowhere", "--registry-upstream", "https://r.example"], "--listen"),
    (["--listen", "h:1", "--registry-upstream", "http://r.example"], "--registry-upstream"),
])
def test_the_command_refuses_bad_arguments(runner: FlaskCliRunner, args: list[str],
                                           message: str) -> None:
    result = runner.invoke(cli, ["proxy-config", *args])
    assert result.exit_code != 0
    assert message in result.output

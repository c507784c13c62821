"""The registry config.yml: valid YAML that makes distribution (2.x or 3.x) trust authsvc's
tokens, and the ``registry-config`` command that prints it."""

from pathlib import Path

import pytest
import yaml

from authsvc.cli import cli
from authsvc.pki.certs import CertPaths
from authsvc.pki.registry_config import registry_config

REALM = "https://auth.example:5001/token"
SERVICE = "registry.example:5000"
ISSUER = "authsvc.example"


def render(tmp_path: Path, **overrides: object) -> dict:
    args: dict = {
        "addr": ":5000",
        "realm": REALM,
        "service": SERVICE,
        "issuer": ISSUER,
        "certs": CertPaths(tmp_path / "certs"),
        "storage_dir": tmp_path / "data",
    }
    args.update(overrides)
    config = yaml.safe_load(registry_config(**args))
    assert isinstance(config, dict)
    return config


def test_token_auth_section(tmp_path: Path) -> None:
    token = render(tmp_path)["auth"]["token"]
    assert token == {
        "realm": REALM,
        "service": SERVICE,
        "issuer": ISSUER,
        "rootcertbundle": str(tmp_path / "certs" / "rootcertbundle.pem"),
    }


def test_storage_allows_delete(tmp_path: Path) -> None:
    storage = render(tmp_path)["storage"]
    assert storage["delete"]["enabled"] is True
    assert storage["filesystem"]["rootdirectory"] == str(tmp_path / "data")


def test_https_with_the_registry_certificate(tmp_path: Path) -> None:
    http = render(tmp_path, addr="0.0.0.0:5443")["http"]
    certs = CertPaths(tmp_path / "certs")
    assert http["addr"] == "0.0.0.0:5443"
    assert http["tls"] == {"certificate": str(certs.registry), "key": str(certs.registry_key)}


def test_version_is_present(tmp_path: Path) -> None:
    assert str(render(tmp_path)["version"]) == "0.1"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("realm", "https://auth.example/token?x=1#frag"),
        ("service", 'my "quoted" registry'),
        ("issuer", "issuer: with colon # and hash"),
        ("issuer", "- leading dash"),
        ("service", "yes"),      # a YAML 1.1 boolean when unquoted
        ("issuer", "1.0"),       # a YAML float when unquoted
        ("realm", "https://auth.example/tökén"),
        ("service", "back\\slash"),
    ],
)
def test_values_survive_yaml_quoting(tmp_path: Path, field: str, value: str) -> None:
    assert render(tmp_path, **{field: value})["auth"]["token"][field] == value


def test_paths_with_spaces_and_specials(tmp_path: Path) -> None:
    odd = tmp_path / "my certs: #1"
    config = render(tmp_path, certs=CertPaths(odd), storage_dir=odd / "data 'x'")
    assert config["auth"]["token"]["rootcertbundle"] == str(odd / "rootcertbundle.pem")
    assert config["storage"]["filesystem"]["rootdirectory"] == str(odd / "data 'x'")


def test_version_2_has_no_distribution_3_keys(tmp_path: Path) -> None:
    token = render(tmp_path, registry_version=2, signing_algorithms=["ES256"])["auth"]["token"]
    assert "jwks" not in token and "signingalgorithms" not in token


@pytest.mark.parametrize("algorithms", [["ES256"], ["ES256", "RS256"]])
def test_version_3_trusts_the_jwks_file_and_our_algorithms(tmp_path: Path, algorithms) -> None:
    token = render(tmp_path, registry_version=3, signing_algorithms=algorithms)["auth"]["token"]
    assert token["jwks"] == str(tmp_path / "certs" / "jwks.json")
    assert token["rootcertbundle"] == str(tmp_path / "certs" / "rootcertbundle.pem")
    assert token["signingalgorithms"] == algorithms


def test_version_3_without_algorithms_keeps_the_registry_default(tmp_path: Path) -> None:
    token = render(tmp_path, registry_version=3)["auth"]["token"]
    assert "signingalgorithms" not in token
    assert token["jwks"].endswith("jwks.json")


# -- the command -------------------------------------------------------------------------------

def _command(runner, *args: str) -> dict:
    result = runner.invoke(cli, ["registry-config", "--registry-addr", "127.0.0.1:5000", *args])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(result.output)
    assert isinstance(config, dict)
    return config["auth"]["token"]


def test_command_defaults_to_registry_2(runner) -> None:
    token = _command(runner)
    assert set(token) == {"realm", "service", "issuer", "rootcertbundle"}


def test_command_for_registry_3_names_the_signing_algorithm(runner, certs_dir: Path) -> None:
    token = _command(runner, "--registry-version", "3")
    assert token["jwks"] == str(CertPaths(certs_dir).jwks)
    assert token["signingalgorithms"] == ["ES256"]  # the session's key is EC P-256


def test_command_refuses_unknown_versions(runner) -> None:
    result = runner.invoke(cli, ["registry-config", "--registry-addr", "r:5000",
                                 "--registry-version", "4"])
    assert result.exit_code == 2

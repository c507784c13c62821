"""The registry config.yml: valid YAML that makes distribution (2.x or 3.x) trust authsvc's
tokens and post its notifications to authsvc, and the ``registry-config`` command that prints
it and remembers where the registry is (REGISTRY_URL)."""

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from authsvc import create_app
from authsvc.cli import cli
from authsvc.pki.certs import CertPaths
from authsvc.pki.notification_secret import read_secrets
from authsvc.pki.registry_config import default_registry_url, registry_config

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


# -- notifications -----------------------------------------------------------------------------

EVENTS_URL = "https://auth.example:5001/api/v1/registry/events"


def test_the_notifications_section(tmp_path: Path) -> None:
    config = render(tmp_path, notifications=(EVENTS_URL, "authsvc_ns_s3cret"))
    assert config["notifications"]["events"] == {"includereferences": True}
    (endpoint,) = config["notifications"]["endpoints"]
    assert endpoint["url"] == EVENTS_URL
    assert endpoint["headers"] == {"Authorization": ["Bearer authsvc_ns_s3cret"]}
    assert endpoint["ignoredmediatypes"] == ["application/octet-stream"]
    assert {"timeout", "threshold", "backoff"} <= set(endpoint)
    assert config["auth"]["token"]["realm"] == REALM  # the rest is unchanged


@pytest.mark.parametrize("version", [2, 3])
def test_no_notifications_section_unless_asked(tmp_path: Path, version: int) -> None:
    assert "notifications" not in render(tmp_path, registry_version=version)


@pytest.fixture
def certs_dir(certs_dir: Path, tmp_path: Path) -> Path:
    """A copy of the session's certificate folder without a notification secret: the command
    makes one there."""
    mine = tmp_path / "certs"
    shutil.copytree(certs_dir, mine)
    CertPaths(mine).notification_secret.unlink(missing_ok=True)
    return mine


def invoke(runner, *args: str, addr: str = "127.0.0.1:5000") -> tuple[dict, str]:
    """The printed configuration (standard output) and what went to standard error."""
    result = runner.invoke(cli, ["registry-config", "--registry-addr", addr, *args])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config, result.stderr


def test_command_prints_the_events_endpoint_with_the_secret(runner, certs_dir: Path) -> None:
    config, _ = invoke(runner)
    secret_file = CertPaths(certs_dir).notification_secret
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = read_secrets(secret_file).current
    (endpoint,) = config["notifications"]["endpoints"]
    assert endpoint["url"] == "https://localhost:5001/api/v1/registry/events"
    assert endpoint["headers"] == {"Authorization": [f"Bearer {secret}"]}
    assert config["notifications"]["events"]["includereferences"] is True
    again, _ = invoke(runner)
    assert again["notifications"] == config["notifications"]  # the same secret, not a new one


@pytest.mark.app_config(PUBLIC_URL="https://registry.example.com:5001/")
def test_command_takes_the_events_url_from_public_url(runner) -> None:
    config, _ = invoke(runner)
    assert config["notifications"]["endpoints"][0]["url"] == (
        "https://registry.example.com:5001/api/v1/registry/events")


def test_command_without_notifications(runner, certs_dir: Path) -> None:
    config, _ = invoke(runner, "--no-notifications")
    assert "notifications" not in config
    assert not CertPaths(certs_dir).notification_secret.exists()


# -- REGISTRY_URL ------------------------------------------------------------------------------

def new_app(database_url: str):
    """authsvc started again: it reads instance/config.py afresh."""
    return create_app({"BCRYPT_ROUNDS": 4, "TESTING": True, "DATABASE_URL": database_url})


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_command_remembers_the_registry_url_when_unset(app, runner, database_url: str,
                                                       umask_022: None) -> None:
    written = Path(app.instance_path) / "config.py"
    assert not written.exists()
    _, stderr = invoke(runner, addr="0.0.0.0:5443")
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert "REGISTRY_URL = 'https://localhost:5443'\n" in written.read_text()
    assert f"REGISTRY_URL = 'https://localhost:5443' written to {written}" in stderr
    again = new_app(database_url)
    assert again.config["REGISTRY_URL"] == "https://localhost:5443"
    text = written.read_text()
    _, stderr = invoke(again.test_cli_runner(), addr="0.0.0.0:5443")
    assert written.read_text() == text and stderr == ""


def test_command_adds_the_registry_url_to_an_existing_config(app, runner, database_url: str,
                                                             umask_022: None) -> None:
    written = Path(app.instance_path) / "config.py"
    written.parent.mkdir(parents=True, exist_ok=True)
    written.write_text("TOKEN_TTL = 600")  # no final line break
    written.chmod(0o640)
    invoke(runner, "--registry-url", "https://registry.internal:5000")
    assert written.read_text().startswith("TOKEN_TTL = 600\n")
    assert stat.S_IMODE(written.stat().st_mode) == 0o640  # the owner's choice stays
    again = new_app(database_url)
    assert (again.config["TOKEN_TTL"], again.config["REGISTRY_URL"]) == (
        600, "https://registry.internal:5000")


@pytest.mark.app_config(REGISTRY_URL="https://registry.internal:5000")
def test_command_keeps_a_registry_url_that_is_set(app, runner) -> None:
    written = Path(app.instance_path) / "config.py"
    _, stderr = invoke(runner)
    assert stderr == "" and not written.exists()
    _, stderr = invoke(runner, "--registry-url", "https://elsewhere:5000")
    assert "REGISTRY_URL is already https://registry.internal:5000; kept it" in stderr
    assert not written.exists()


@pytest.mark.parametrize(("addr", "public_url", "expected"), [
    ("0.0.0.0:5000", "https://registry.example.com:5001", "https://registry.example.com:5000"),
    ("[::]:5000", "https://registry.example.com:5001", "https://registry.example.com:5000"),
    (":5000", "https://registry.example.com:5001", "https://registry.example.com:5000"),
    ("host:5000", "https://registry.example.com:5001", "https://host:5000"),
    ("10.0.0.5:5443", "https://registry.example.com:5001", "https://10.0.0.5:5443"),
    ("[::1]:5000", "https://registry.example.com:5001", "https://[::1]:5000"),
    ("0.0.0.0:5000", "https://[2001:db8::1]:5001", "https://[2001:db8::1]:5000"),
    ("0.0.0.0:5000", "https://localhost", "https://localhost:5000"),
])
def test_default_registry_url(addr: str, public_url: str, expected: str) -> None:
    assert default_registry_url(addr, public_url) == expected

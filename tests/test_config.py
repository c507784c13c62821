"""Configuration layering and validation in create_app."""

from pathlib import Path

import pytest

from authsvc import create_app
from authsvc.errors import ConfigError


@pytest.fixture(autouse=True)
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUTHSVC_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("AUTHSVC_CERTS_DIR", str(tmp_path / "certs"))
    return tmp_path


def test_defaults() -> None:
    app = create_app()
    assert app.config["TOKEN_TTL"] == 900
    assert app.config["SERVICES"] == ["registry"]
    assert app.config["DEFAULT_VISIBILITY"] == "private"
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("/instance/authsvc.db")


def test_layers_instance_file_then_environment_then_test_mapping(
        folders: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folders / "instance").mkdir()
    (folders / "instance" / "config.py").write_text(
        'TOKEN_TTL = 600\nISSUER = "file-issuer"\nSERVICES = ["reg-a"]\n')
    monkeypatch.setenv("AUTHSVC_TOKEN_TTL", "1200")
    monkeypatch.setenv("AUTHSVC_SERVICES", "reg-a, reg-b")
    app = create_app({"ISSUER": "test-issuer"})
    assert app.config["TOKEN_TTL"] == 1200
    assert app.config["SERVICES"] == ["reg-a", "reg-b"]
    assert app.config["ISSUER"] == "test-issuer"


def test_database_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHSVC_DATABASE_URL", "sqlite:////tmp/elsewhere.db")
    assert create_app().config["SQLALCHEMY_DATABASE_URI"] == "sqlite:////tmp/elsewhere.db"


@pytest.mark.parametrize(("key", "value"), [
    ("TOKEN_TTL", 10), ("TOKEN_TTL", "900"), ("BCRYPT_ROUNDS", 40), ("SERVICES", []),
    ("ISSUER", ""), ("DEFAULT_VISIBILITY", "internal"), ("KID_FORMAT", "x5t"),
    ("TOKEN_X5C", "yes"), ("PUBLIC_URL", "localhost:5001"), ("PORT", 0),
    ("TRUSTED_PROXIES", ["proxy.internal"]), ("TRUSTED_PROXIES", ["10.0.0.1/8"]),
    ("TRUSTED_PROXIES", "10.0.0.1, 10.0.0.999"), ("TRUSTED_PROXIES", 5),
    ("TRUSTED_PROXIES", [None]), ("BODY_TIMEOUT", 0), ("BODY_TIMEOUT", 1000),
])
def test_invalid_setting_names_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        create_app({key: value})
    assert key in info.value.message


def test_invalid_environment_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHSVC_TOKEN_TTL", "soon")
    with pytest.raises(ConfigError, match="TOKEN_TTL"):
        create_app()


def test_trusted_proxies_are_none_by_default() -> None:
    assert create_app().config["TRUSTED_PROXIES"] == []


def test_trusted_proxies_from_environment_as_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHSVC_TRUSTED_PROXIES", "10.0.0.1, 10.1.0.0/16,2001:db8::/32")
    app = create_app()
    assert app.config["TRUSTED_PROXIES"] == ["10.0.0.1", "10.1.0.0/16", "2001:db8::/32"]

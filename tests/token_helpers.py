"""Helpers the ``/token`` tests share: the type of the ``decode`` fixture, one ``GET /token``,
the access a granted token holds, a Basic ``Authorization`` value, and a database emptied
between hypothesis examples."""

import base64
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authsvc.db.audit import Origin, set_origin
from authsvc.db.models import db
from authsvc.db.services import Services, services_of
from tests.conftest import PASSWORD, empty_tables

#: The ``decode`` fixture (tests/conftest.py): verifies a token as the registry does and returns
#: its claims; ``audience=`` names another service.
Decode = Callable[..., dict[str, Any]]


def get_token(client: FlaskClient, *scopes: str, auth: tuple[str, str] | None = None,
              service: str = "registry", **params: str) -> Any:
    """``GET /token`` for ``scopes`` (each its own ``scope`` parameter) as ``auth`` (None:
    anonymous); ``params`` are further query parameters."""
    query: dict[str, Any] = {"service": service, "scope": list(scopes), **params}
    return client.get("/token", query_string=query, auth=auth)


def access_of(decode: Decode, response: Any) -> dict[str, list[str]]:
    """Assert a 200; return the granted actions by ``type:name``."""
    assert response.status_code == 200, response.json
    claims = decode(response.json["token"])
    return {f"{a['type']}:{a['name']}": a["actions"] for a in claims["access"]}


def basic(user: str, secret: str = PASSWORD) -> str:
    """The ``Authorization`` value of Basic credentials (the test password unless told)."""
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


@pytest.fixture
def fresh_database(app: Flask) -> Iterator[Callable[[], Services]]:
    """Empties the database; hypothesis runs many examples in one test function."""

    def reset() -> Services:
        set_origin(Origin())
        db.session.remove()
        if app.config["DATABASE_URL"]:
            empty_tables()
        else:
            db.drop_all()
            db.create_all()
        return services_of(app)

    with app.app_context():
        yield reset

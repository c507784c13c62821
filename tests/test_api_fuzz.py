"""Property-based fuzzing of the admin API from its own OpenAPI document (schemathesis).

Every generated request, valid or not, must get an answer that is not a 5xx and that matches
the documented schema for its status code.
"""

import base64
from collections.abc import Iterator

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from authsvc.models import db
from tests.conftest import PASSWORD


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()


@pytest.fixture
def fuzz_app(app: Flask) -> Iterator[Flask]:
    with app.app_context():
        state = app.extensions["authsvc"]
        state.accounts.create_user("root", PASSWORD, admin=True)
        state.accounts.create_user("alice", PASSWORD)
        state.repos.create("alice/httpd")
        state.repos.grant("alice", "root/*", "pull")
        db.session.remove()
    yield app


@pytest.fixture
def api_schema(fuzz_app: Flask) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)


schema = schemathesis.pytest.from_fixture("api_schema")


FUZZ_SETTINGS = settings(max_examples=25, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                HealthCheck.function_scoped_fixture])


def check(case: schemathesis.Case, caller: str) -> None:
    """No 5xx, and every answer is documented for its status code."""
    response = case.call(headers={"Authorization": basic(caller)})
    assert response.status_code < 500, response.text
    case.validate_response(response, checks=[response_schema_conformance,
                                              content_type_conformance, status_code_conformance])


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_as_admin(case: schemathesis.Case) -> None:
    check(case, "root")


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_as_ordinary_user(case: schemathesis.Case) -> None:
    check(case, "alice")

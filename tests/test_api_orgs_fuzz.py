"""Property-based fuzzing of the ``/orgs`` routes from the API's own OpenAPI document
(schemathesis), as ``tests/test_api_fuzz.py`` does for the others.

Every generated request, valid or not, from an admin, an owner and a stranger, must get an
answer that is not a 5xx and that matches the documented schema for its status code.
"""

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

from authsvc.db.models import db
from authsvc.db.services import services_of
from tests.conftest import PASSWORD
from tests.token_helpers import basic


def reset_acme(app: Flask) -> None:
    """acme as at first (owned by alice; a team dev with bob in it and read on acme/*; a
    repository acme/app), whatever the last request did to it: the examples of all routes run
    on one app, and the document's examples name acme, dev and bob."""
    with app.app_context():
        orgs = services_of(app).orgs
        if orgs.exists("acme"):
            orgs.delete("acme", force=True)
        orgs.create("acme", ["alice"])
        orgs.create_team("acme", "dev", "developers")
        orgs.add_member("acme", "dev", "bob")
        orgs.set_permission("acme", "dev", "acme/*", "read")
        services_of(app).repos.create("acme/app")
        db.session.remove()


@pytest.fixture
def fuzz_app(app: Flask) -> Iterator[Flask]:
    """root (admin), alice (owns acme), bob (in its team dev) and carol (in no team)."""
    with app.app_context():
        accounts = services_of(app).accounts
        accounts.create_user("root", PASSWORD, admin=True)
        for name in ("alice", "bob", "carol"):
            accounts.create_user(name, PASSWORD)
    reset_acme(app)
    yield app


@pytest.fixture
def api_schema(fuzz_app: Flask) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)


#: Only the organisation routes: tests/test_api_fuzz.py fuzzes the others.
schema = schemathesis.pytest.from_fixture("api_schema").include(path_regex="^/orgs")


FUZZ_SETTINGS = settings(max_examples=6, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                HealthCheck.function_scoped_fixture])


def check(app: Flask, case: schemathesis.Case, caller: str) -> None:
    """No 5xx, and every answer is documented for its status code."""
    reset_acme(app)
    response = case.call(headers={"Authorization": basic(caller)})
    assert response.status_code < 500, response.text
    case.validate_response(response, checks=[response_schema_conformance,
                                              content_type_conformance, status_code_conformance])


@schema.parametrize()
@FUZZ_SETTINGS
def test_orgs_as_admin(case: schemathesis.Case, fuzz_app: Flask) -> None:
    check(fuzz_app, case, "root")


@schema.parametrize()
@FUZZ_SETTINGS
def test_orgs_as_owner(case: schemathesis.Case, fuzz_app: Flask) -> None:
    check(fuzz_app, case, "alice")


@schema.parametrize()
@FUZZ_SETTINGS
def test_orgs_as_member(case: schemathesis.Case, fuzz_app: Flask) -> None:
    check(fuzz_app, case, "bob")


@schema.parametrize()
@FUZZ_SETTINGS
def test_orgs_as_stranger(case: schemathesis.Case, fuzz_app: Flask) -> None:
    check(fuzz_app, case, "carol")

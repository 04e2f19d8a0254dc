"""schemathesis over the served OpenAPI schema: every documented operation, anonymous and with a token.

Checks: no 5xx, status codes and content types as documented, response bodies matching their schemas (the
error answers too: ``{error, field, detail}``). Runs in-process over WSGI against the real PostgreSQL.
"""

from __future__ import annotations

import pytest
import schemathesis
from fuzzstats import count, scaled
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _load_schema():
    from registry.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


schema = _load_schema()  # at collection: pytest-django has set Django up; the schema view needs no database


@pytest.fixture
def token_headers(db, django_user_model):
    from registry.accounts.services import create_token

    user = django_user_model.objects.create_user(username="fuzzer", password="correct-horse-battery-9")
    return {"Authorization": f"Bearer {create_token(user=user, name='fuzz').key}"}


_SETTINGS = hypothesis_settings(max_examples=scaled(12), deadline=None, derandomize=True, database=None,
                                suppress_health_check=list(HealthCheck))


@pytest.mark.django_db
@schema.parametrize()
@_SETTINGS
def test_every_operation_anonymously(case, open_throttles, wsgi_in_test_transaction):
    response = case.call()
    count("schemathesis", response.status_code)
    case.validate_response(response, checks=CHECKS)


@pytest.mark.django_db
@schema.parametrize()
@_SETTINGS
def test_every_operation_with_a_token(case, open_throttles, wsgi_in_test_transaction, token_headers):
    response = case.call(headers=token_headers)
    count("schemathesis", response.status_code)
    case.validate_response(response, checks=CHECKS, headers=token_headers)

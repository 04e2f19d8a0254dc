"""The OpenAPI schema is served, is a valid OpenAPI 3 document, and the docs work without a CDN."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(anon_client) -> dict:
    r = anon_client.get("/api/schema/", {"format": "json"}, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert r.status_code == 200
    return r.json()


def test_schema_is_valid_openapi(schema):
    validate(schema)
    assert schema["openapi"].startswith("3.")


def test_schema_documents_the_rest_api(schema):
    paths = schema["paths"]
    for p in ["/api/v1/tickets/", "/api/v1/tickets/{name}/", "/api/v1/tickets/{name}/withdraw/",
              "/api/v1/tickets/{name}/revisions/", "/api/v1/tickets/{name}/revisions/{rev}/",
              "/api/v1/tickets/{name}/revisions/{rev}/verification/",
              "/api/v1/tickets/{name}/revisions/{rev}/files/{path}", "/api/v1/tokens/", "/api/v1/tokens/{token_id}/",
              "/api/v1/tasks/", "/api/v1/accounts/"]:
        assert p in paths, p
    submit = paths["/api/v1/tickets/"]["post"]
    multipart = submit["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][multipart]["required"]) == {"config", "init", "mask"}
    list_params = {p["name"] for p in paths["/api/v1/tickets/"]["get"]["parameters"]}
    assert {"task", "architecture", "density_min", "density_max", "status", "owner", "search", "sort",
            "page"} <= list_params
    assert schema["components"]["securitySchemes"]["tokenAuth"] == {
        "type": "http", "scheme": "bearer", "description": "An API token from POST /api/v1/tokens/."}


def test_swagger_ui_is_served_with_local_assets(anon_client):
    r = anon_client.get("/api/docs/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "/api/schema/" in html
    assets = re.findall(r'(/static/drf_spectacular_sidecar/[^"\']+\.js)', html)
    assert assets, "Swagger UI should load its scripts from our own static files"
    for asset in assets:
        served = anon_client.get(asset)
        assert served.status_code == 200, asset


def test_spectacular_validates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_paginated_lists_are_described_as_pages(schema):
    for path in ["/api/v1/tickets/", "/api/v1/tickets/{name}/revisions/"]:
        ref = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        page = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert set(page["properties"]) == {"count", "next", "previous", "results"}, path
        assert page["properties"]["results"]["type"] == "array"


def test_error_answers_are_documented_in_the_error_shape(schema):
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error", "field", "detail"}
    submit = schema["paths"]["/api/v1/tickets/"]["post"]["responses"]
    for status in ["400", "401", "403", "404", "409", "413", "429"]:
        assert submit[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "delete"):
                assert {"400", "404"} <= set(operation["responses"]), (path, method)


def test_the_verification_policy_view_is_in_the_schema(schema):
    assert "/api/v1/verification-policy/" in schema["paths"]


def test_the_api_docs_describe_the_hub_protocol_routes(schema):
    description = schema["info"]["description"]
    for route in ("/api/models", "/api/models/{name}", "/tree/{rev}", "/{name}/resolve/{rev}/{path}",
                  "X-Repo-Commit", "README.md", "verification.json"):
        assert route in description, route

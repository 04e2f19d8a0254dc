"""Random requests on the routes outside the OpenAPI schema (the Hugging Face read protocol, web pages,
badges, progress JSON) and on unknown URLs: hostile path segments and queries never cause a 5xx, and under
/api/ every error is the JSON ``{error, field, detail}``."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from fuzzstats import count, scaled
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

ROUTES = ["/api/models", "/api/models/{s}", "/api/models/{s}/revision/{s}", "/api/models/{s}/tree/{s}",
          "/{s}/resolve/{s}/{s}", "/{s}/resolve/main/config.json", "/tickets/", "/tickets/{s}/",
          "/tickets/{s}/progress.json", "/tickets/{s}/curves/1.svg", "/tasks/{s}/", "/tasks/{s}/frontier.svg",
          "/tasks/{s}/frontier.vl.json", "/badges/{s}.svg", "/badges/{s}.json", "/api/v1/{s}/", "/api/{s}",
          "/api/v1/tickets/{s}/revisions/{s}/files/{s}", "/api/v1/revisions/{s}/verifications/",
          "/api/v1/verifications/{s}/", "/", "/signup/", "/login/", "/submit/", "/healthz", "/{s}"]
HOSTILE = ["\x00", "%00", "\ud800", "..", "../..", "%2e%2e", "\x1b", "\u202e", "a" * 3000, "main", "latest",
           "verified", "0" * 40, "lenet-mnist", "*", "%", "%zz", "\\", "'", "\"", "<script>", "\n", " ", ""]
SEGMENT = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=30),
                    st.builds(lambda a, b: a + b, st.sampled_from(HOSTILE), st.text(max_size=6)))
QUERY = st.dictionaries(st.sampled_from(["search", "sort", "page", "page_size", "limit", "task", "full", "author",
                                         "filter", "revision", "cursor", "direction", "x\x00"]),
                        SEGMENT, max_size=3)


def _url(template: str, segments: list[str], query: dict[str, str]) -> str:
    parts = iter(segments)
    path = template.replace("{s}", "\0SLOT\0")
    path = "".join(quote(next(parts, "x").encode("utf-8", "surrogatepass"), safe="") if piece == "SLOT" else piece
                   for piece in path.split("\0"))
    return path + ("?" + urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in query.items()})
                   if query else "")


@pytest.mark.django_db
@hypothesis_settings(max_examples=scaled(300), deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck))
@given(template=st.sampled_from(ROUTES), segments=st.lists(SEGMENT, min_size=3, max_size=3), query=QUERY,
       method=st.sampled_from(["GET", "GET", "HEAD", "OPTIONS", "POST", "DELETE", "PUT"]))
def test_random_requests_outside_the_schema_never_5xx(template, segments, query, method, open_throttles):
    from django.test import Client

    url = _url(template, segments, query)
    r = Client(raise_request_exception=False).generic(method, url)
    count("random routes", r.status_code)
    assert r.status_code < 500, (method, url, r.status_code, r.content[:300])
    if url.startswith("/api/") and r.status_code >= 400 and method != "HEAD":
        assert r["Content-Type"].startswith("application/json"), (url, r.status_code, r.content[:200])
        assert {"error", "field", "detail"} <= set(r.json())

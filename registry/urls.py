"""URLs: health, admin, the OpenAPI schema and docs, the REST API under /api/v1/, then each area's own.

Each area owns its prefixes. ``registry.hub`` (the Hugging Face read protocol: /api/models/ and
/{repo}/resolve/...) comes last because its resolve pattern starts with a ticket name.
"""

from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from registry.common.health import healthz


class _HtmlDocsOptions:
    """The HTML docs pages answer OPTIONS with their methods (DRF's metadata would try to render the
    page's template with the metadata and fail)."""

    def options(self, request, *args, **kwargs):
        return HttpResponse(status=200, headers={"Allow": "GET, HEAD, OPTIONS"})


class SwaggerView(_HtmlDocsOptions, SpectacularSwaggerView):
    pass


class RedocView(_HtmlDocsOptions, SpectacularRedocView):
    pass


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", RedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/v1/", include("registry.accounts.urls")),
    path("api/v1/", include("registry.tickets.urls")),
    path("", include("registry.verifications.urls")),
    path("", include("registry.catalog.urls")),
    path("", include("registry.badges.urls")),
    path("", include("registry.hub.urls")),
]

handler404 = "registry.common.errors.not_found_view"
handler500 = "registry.common.errors.server_error_view"

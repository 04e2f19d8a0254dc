"""URLs: health, admin, the OpenAPI schema and docs, the REST API under /api/v1/, then each area's own.

Each area owns its prefixes. ``registry.hub`` (the Hugging Face read protocol: /api/models/ and
/{repo}/resolve/...) comes last because its resolve pattern starts with a ticket name.
"""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from registry.common.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/v1/", include("registry.accounts.urls")),
    path("api/v1/", include("registry.tickets.urls")),
    path("", include("registry.verifications.urls")),
    path("", include("registry.catalog.urls")),
    path("", include("registry.badges.urls")),
    path("", include("registry.hub.urls")),
]

handler404 = "registry.common.errors.not_found_view"

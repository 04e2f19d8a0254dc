"""URLs: admin, the OpenAPI schema and docs, the REST API under /api/v1/, then the optional apps.

Optional apps (settings.OPTIONAL_APPS) that are installed and have a ``urls.py`` are included at the root,
in the order of OPTIONAL_APPS, after everything here; each owns its prefixes (the HF-protocol endpoints
of registry.hub use /api/models/ and /{repo}/resolve/..., so /api/v1/ stays the REST API's).
"""

from importlib.util import find_spec

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/v1/", include("registry.accounts.urls")),
    path("api/v1/", include("registry.tickets.urls")),
]

for _app in settings.OPTIONAL_APPS:
    if _app in settings.INSTALLED_APPS and find_spec(f"{_app}.urls") is not None:
        urlpatterns.append(path("", include(f"{_app}.urls")))

handler404 = "registry.common.errors.not_found_view"

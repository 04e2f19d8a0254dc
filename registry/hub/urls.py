"""URLs of the Hub read protocol. Include these LAST: ``<repo>/resolve/...`` matches any first segment."""

from django.urls import path, re_path

from registry.hub import views

app_name = "hub"

# A ticket name: lowercase letters, digits, '.', '_', '-' (no '/', no namespace).
NAME = r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)"

urlpatterns = [
    path("api/models", views.list_models, name="models"),
    re_path(rf"^api/models/{NAME}/revision/(?P<revision>[^/]+)/?$", views.model_info, name="model-revision"),
    re_path(rf"^api/models/{NAME}/tree/(?P<revision>[^/]+)/?$", views.tree, name="tree"),
    re_path(rf"^api/models/{NAME}/?$", views.model_info, name="model"),
    re_path(rf"^{NAME}/resolve/(?P<revision>[^/]+)/(?P<path>.+)$", views.resolve, name="resolve"),
]

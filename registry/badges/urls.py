"""Badge URLs (included at the root by registry/urls.py as an optional app)."""

from django.urls import re_path

from registry.badges import views

app_name = "badges"

NAME = r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)"

urlpatterns = [
    re_path(rf"^badges/{NAME}/(?P<commit>[0-9a-fA-F]{{40}})\.(?P<fmt>svg|json)$", views.pinned_badge, name="pinned"),
    re_path(rf"^badges/{NAME}\.(?P<fmt>svg|json)$", views.latest_badge, name="latest"),
]

from django.apps import AppConfig


class BadgesConfig(AppConfig):
    name = "registry.badges"
    label = "badges"
    verbose_name = "Badges"

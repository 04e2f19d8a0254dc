from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "registry.catalog"
    label = "catalog"
    verbose_name = "Web catalog"

    def ready(self) -> None:
        from registry.catalog import signals

        signals.connect()

from django.apps import AppConfig


class HubConfig(AppConfig):
    name = "registry.hub"
    label = "hub"
    verbose_name = "Hugging Face Hub protocol"

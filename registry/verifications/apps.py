from django.apps import AppConfig


class VerificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "registry.verifications"
    label = "verifications"
    verbose_name = "Verifications"

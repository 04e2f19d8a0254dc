from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "registry.tickets"
    label = "tickets"
    verbose_name = "Tickets"

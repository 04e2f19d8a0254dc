from django.core.management.base import BaseCommand

from registry.tickets.models import Task
from registry.tickets.taskseed import sync_tasks


class Command(BaseCommand):
    help = "Create or update the Task rows from ticketclient.tasks."

    def handle(self, *args, **options) -> None:
        names = sync_tasks(Task)
        self.stdout.write(f"synced {len(names)} tasks: {', '.join(names)}")

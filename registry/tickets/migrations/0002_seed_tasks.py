"""Seed the Task table from ticketclient.tasks (torch-free); later changes: manage.py sync_tasks."""

from django.db import migrations


def seed_tasks(apps, schema_editor):
    from registry.tickets.taskseed import sync_tasks

    sync_tasks(apps.get_model("tickets", "Task"))


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial")]

    operations = [migrations.RunPython(seed_tasks, migrations.RunPython.noop)]

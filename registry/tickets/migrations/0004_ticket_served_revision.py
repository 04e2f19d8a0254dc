"""Ticket.served_revision: the latest verified revision (what the Hub serves as ``main``), stored instead of a
per-ticket subquery so listings do not depend on the planner's statistics."""

import django.db.models.deletion
from django.db import migrations, models


def fill_served_revisions(apps, schema_editor):
    Ticket = apps.get_model("tickets", "Ticket")
    Revision = apps.get_model("tickets", "Revision")
    latest_verified = (Revision.objects.filter(ticket=models.OuterRef("pk"), status="verified")
                       .order_by("-number").values("pk")[:1])
    Ticket.objects.update(served_revision=models.Subquery(latest_verified))


class Migration(migrations.Migration):
    dependencies = [("tickets", "0003_ticket_name_key")]

    operations = [
        migrations.AddField(
            model_name="ticket", name="served_revision",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                    related_name="+", to="tickets.revision"),
        ),
        migrations.RunPython(fill_served_revisions, migrations.RunPython.noop),
    ]

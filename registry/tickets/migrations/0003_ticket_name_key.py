"""Ticket.name_key: the look-alike class of a name (case, -_. and 0/o, 1/l folded), unique."""

from django.db import migrations, models

_CONFUSABLE = str.maketrans({"0": "o", "1": "l", "-": None, "_": None, ".": None})


def fill_name_keys(apps, schema_editor):
    Ticket = apps.get_model("tickets", "Ticket")
    seen = {}
    for ticket in Ticket.objects.order_by("created_at", "pk"):
        key = ticket.name.lower().translate(_CONFUSABLE)
        if key in seen:  # an existing look-alike pair: the later one keeps a distinct key (names are unique)
            key = f"{key}#{ticket.pk}"[:96]
        seen[key] = ticket.pk
        Ticket.objects.filter(pk=ticket.pk).update(name_key=key)


class Migration(migrations.Migration):
    dependencies = [("tickets", "0002_seed_tasks")]

    operations = [
        migrations.AddField(model_name="ticket", name="name_key",
                            field=models.CharField(editable=False, max_length=96, null=True)),
        migrations.RunPython(fill_name_keys, migrations.RunPython.noop),
        migrations.AlterField(model_name="ticket", name="name_key",
                              field=models.CharField(editable=False, max_length=96, unique=True)),
    ]

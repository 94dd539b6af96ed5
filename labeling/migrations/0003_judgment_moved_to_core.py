"""Judgment now belongs to the core app (workbench 0003 took it over); only the migration state changes."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("labeling", "0002_judgment_table_to_core"), ("workbench", "0003_judgment_from_labeling")]

    operations = [migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="Judgment")])]

"""Judgment moves to the core app (workbench): first its table takes the core's name."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("labeling", "0001_initial")]

    operations = [migrations.AlterModelTable(name="judgment", table="workbench_judgment")]

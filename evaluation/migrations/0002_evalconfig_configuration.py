"""Evaluation configurations name a saved search configuration instead of repeating its fields."""

import django.db.models.deletion
from django.db import migrations, models


def to_configurations(apps, schema_editor):  # type: ignore[no-untyped-def]
    EvalConfig = apps.get_model("evaluation", "EvalConfig")
    SearchConfiguration = apps.get_model("workbench", "SearchConfiguration")
    for cfg in EvalConfig.objects.select_related("eval_run", "index").order_by("pk"):
        hybrid = cfg.mode == "hybrid"
        fields = {
            "project_id": cfg.eval_run.project_id,
            "index_id": cfg.index_id,
            "mode": cfg.mode,
            "alpha": round(cfg.alpha, 6) if hybrid else 0.5,
            "fusion_depth": 100,
            "reranker_id": cfg.reranker_id,
            "rerank_top_n": cfg.rerank_top_n if cfg.reranker_id else 50,
        }
        found = SearchConfiguration.objects.filter(**fields).first()
        if found is None:
            name, n = cfg.label[:190], 2
            while SearchConfiguration.objects.filter(project_id=fields["project_id"], name=name).exists():
                name, n = f"{cfg.label[:180]} ({n})", n + 1
            found = SearchConfiguration.objects.create(name=name, created_by_id=cfg.eval_run.created_by_id, **fields)
        cfg.configuration_id = found.pk
        cfg.save(update_fields=["configuration"])


class Migration(migrations.Migration):
    dependencies = [
        ("evaluation", "0001_initial"),
        ("workbench", "0005_search_configurations_and_serving"),
    ]

    operations = [
        migrations.AddField(
            model_name="evalconfig",
            name="configuration",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="eval_configs",
                to="workbench.searchconfiguration",
            ),
        ),
        migrations.RunPython(to_configurations, migrations.RunPython.noop),
        migrations.RemoveField(model_name="evalconfig", name="index"),
        migrations.RemoveField(model_name="evalconfig", name="mode"),
        migrations.RemoveField(model_name="evalconfig", name="alpha"),
        migrations.RemoveField(model_name="evalconfig", name="reranker"),
        migrations.RemoveField(model_name="evalconfig", name="rerank_top_n"),
        migrations.AlterField(
            model_name="evalconfig",
            name="configuration",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="eval_configs",
                to="workbench.searchconfiguration",
            ),
        ),
    ]

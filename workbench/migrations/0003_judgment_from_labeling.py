"""Judgment moves from labeling to the core app. The table was renamed by labeling 0002; only the state moves here."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workbench", "0002_retrieval_models"),
        ("labeling", "0002_judgment_table_to_core"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Judgment',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('grade', models.SmallIntegerField(choices=[(0, '0 not relevant'), (1, '1 related'), (2, '2 relevant'), (3, '3 highly relevant')])),
                        ('source', models.CharField(choices=[('imported', 'Imported'), ('annotator', 'Annotator'), ('adjudicated', 'Adjudicated')], max_length=12)),
                        ('split', models.CharField(blank=True, max_length=100)),
                        ('evidence', models.JSONField(blank=True, default=list, help_text='Character spans [[start, end], ...] in the passage.')),
                        ('cant_judge', models.BooleanField(default=False)),
                        ('explanation', models.TextField(blank=True)),
                        ('seconds', models.FloatField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('annotator', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                        ('document', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='judgments', to='workbench.document')),
                        ('import_record', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='workbench.importrecord')),
                        ('passage', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='judgments', to='workbench.passage')),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='judgments', to='workbench.project')),
                        ('query', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='judgments', to='workbench.query')),
                    ],
                    options={
                        'ordering': ['query_id', 'document_id'],
                        'indexes': [models.Index(fields=['project', 'query'], name='labeling_ju_project_7aa1cd_idx')],
                        'constraints': [models.UniqueConstraint(condition=models.Q(('source', 'imported')), fields=('query', 'document', 'split'), name='one_imported_judgment_per_pair_and_split'), models.CheckConstraint(condition=models.Q(('grade__gte', 0), ('grade__lte', 3)), name='grade_between_0_and_3')],
                    },
                ),
            ],
        ),
    ]

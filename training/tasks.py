"""Celery tasks of the training app: thin, the work is in training.services."""

from __future__ import annotations

from django.urls import reverse

from training import services
from workbench.jobs import JobReporter, job_task, queue_from_setting
from workbench.models import Job


def _links(job: Job) -> list[tuple[str, str]]:
    run_id = job.params.get("run_id")
    if not run_id:
        return []
    return [("Training run", reverse("training:run", kwargs={"slug": job.project.slug, "pk": run_id}))]


@job_task(
    "training_run",
    queue=queue_from_setting("TRAINING_QUEUE", "cpu"),
    time_limit_s=12 * 3600,
    soft_time_limit_s=12 * 3600 - 300,
    links=_links,
)
def training_run(job: Job, report: JobReporter) -> dict:
    return services.training_run_execute(job=job, report=report)

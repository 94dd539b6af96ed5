"""Background task of the evaluation app. Thin: load the row, call one service; queue and limits in the decorator."""

from __future__ import annotations

from django.urls import reverse

from evaluation.models import EvalRun
from evaluation.services import JOB_KIND, eval_run_execute
from workbench.jobs import JobReporter, job_task
from workbench.models import Job


def _links(job: Job) -> list[tuple[str, str]]:
    run_id = job.params.get("eval_run_id")
    if not EvalRun.objects.filter(pk=run_id, project=job.project).exists():
        return []  # deleted since
    return [(f"Evaluation #{run_id}", reverse("evaluation:detail", kwargs={"slug": job.project.slug, "pk": run_id}))]


@job_task(JOB_KIND, queue="default", time_limit_s=4 * 3600, soft_time_limit_s=4 * 3600 - 120, links=_links)
def evaluation_run(job: Job, report: JobReporter) -> dict:
    run = EvalRun.objects.get(pk=job.params["eval_run_id"], project=job.project)
    # The last progress of the search phase and the metrics phase are forced so the page never shows a stale step.
    return eval_run_execute(
        eval_run=run, job=job, progress=lambda f, m: report.progress(f, m, force=f >= 0.9), log=report.log
    )


from evaluation.answers import tasks as answer_tasks  # noqa: E402, F401  (registers the answer-run job kinds)

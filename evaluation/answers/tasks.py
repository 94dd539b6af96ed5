"""Background tasks of answer runs. Thin: load the row, call one service; queue and limits in the decorator."""

from __future__ import annotations

from django.urls import reverse

from evaluation.answers.services import JOB_KIND, JUDGE_JOB_KIND, answer_run_execute, auto_judge_execute
from evaluation.models import AnswerRun
from workbench.jobs import JobReporter, job_task
from workbench.models import Job


def _links(job: Job) -> list[tuple[str, str]]:
    run_id = job.params.get("answer_run_id")
    if not AnswerRun.objects.filter(pk=run_id, project=job.project).exists():
        return []
    return [
        (f"Answer run #{run_id}", reverse("evaluation:answers_detail", kwargs={"slug": job.project.slug, "pk": run_id}))
    ]


@job_task(JOB_KIND, queue="default", time_limit_s=6 * 3600, soft_time_limit_s=6 * 3600 - 120, links=_links)
def answer_run(job: Job, report: JobReporter) -> dict:
    run = AnswerRun.objects.get(pk=job.params["answer_run_id"], project=job.project)
    return answer_run_execute(
        run=run, job=job, progress=lambda f, m: report.progress(f, m, force=f >= 0.95), log=report.log
    )


@job_task(JUDGE_JOB_KIND, queue="default", time_limit_s=4 * 3600, soft_time_limit_s=4 * 3600 - 120, links=_links)
def answer_judge(job: Job, report: JobReporter) -> dict:
    run = AnswerRun.objects.get(pk=job.params["answer_run_id"], project=job.project)
    return auto_judge_execute(run=run, params=job.params, progress=lambda f, m: report.progress(f, m, force=f >= 1.0))

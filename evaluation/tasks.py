"""Background task of the evaluation app. Thin: load the row, call one service."""

from __future__ import annotations

from evaluation.models import EvalRun
from evaluation.services import JOB_KIND, eval_run_execute
from workbench.jobs import JobReporter, job_task
from workbench.models import Job


@job_task(JOB_KIND)
def evaluation_run(job: Job, report: JobReporter) -> dict:
    run = EvalRun.objects.get(pk=job.params["eval_run_id"], project=job.project)
    # The last progress of the search phase and the metrics phase are forced so the page never shows a stale step.
    return eval_run_execute(
        eval_run=run, job=job, progress=lambda f, m: report.progress(f, m, force=f >= 0.9), log=report.log
    )

"""Background tasks of the labeling app. Thin: load the row, call one service; queue and limits in the decorator."""

from __future__ import annotations

from django.urls import reverse

from labeling.models import Campaign, MiningRun
from labeling.services import autojudge, campaigns, mining
from workbench.jobs import JobReporter, job_task
from workbench.models import Job


def _campaign_links(job: Job) -> list[tuple[str, str]]:
    pk = job.params.get("campaign_id")
    if not Campaign.objects.filter(pk=pk, project=job.project).exists():
        return []
    return [(f"Campaign #{pk}", reverse("labeling:campaign", kwargs={"slug": job.project.slug, "pk": pk}))]


def _mining_links(job: Job) -> list[tuple[str, str]]:
    return [("Audit yield", reverse("labeling:mining", kwargs={"slug": job.project.slug}))]


@job_task(
    campaigns.POOL_JOB_KIND, queue="cpu", time_limit_s=2 * 3600, soft_time_limit_s=2 * 3600 - 120, links=_campaign_links
)
def campaign_pool(job: Job, report: JobReporter) -> dict:
    campaign = Campaign.objects.get(pk=job.params["campaign_id"], project=job.project)
    try:
        return campaigns.campaign_pool_build(campaign=campaign, progress=report.progress)
    except BaseException:
        campaigns.campaign_pool_failed(campaign_id=campaign.pk)  # back to draft, so the pool can be built again
        raise


@job_task(
    mining.MINING_JOB_KIND, queue="cpu", time_limit_s=4 * 3600, soft_time_limit_s=4 * 3600 - 120, links=_mining_links
)
def hard_negative_mining(job: Job, report: JobReporter) -> dict:
    run = MiningRun.objects.get(pk=job.params["mining_run_id"], project=job.project)
    return mining.mining_execute(run=run, progress=report.progress)


@job_task(
    autojudge.AUTOJUDGE_JOB_KIND, queue="default", time_limit_s=3600, soft_time_limit_s=3540, links=_campaign_links
)
def campaign_autojudge(job: Job, report: JobReporter) -> dict:
    return autojudge.autojudge_execute(job=job, progress=report.progress)

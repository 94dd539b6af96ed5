"""Watching the active release: drift of live top-1 scores, latency against the budget, the golden set on a schedule.

Drift: the distribution of the best hit's score on live queries answered by the release, its first week against
the last day, with a two-sample Kolmogorov-Smirnov test (scipy); an alert when p < ``DRIFT_P`` with enough queries on
both sides. A shift says the queries (or the corpus) moved away from what the release was judged on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
from django.db.models import QuerySet
from django.utils import timezone

from evaluation.models import EvalConfig
from evaluation.selectors import run_metrics
from evaluation.services import eval_run_start
from releases.models import Release, ReleaseAlert
from releases.services.gates import policy_for
from releases.services.lifecycle import audit, release_rollback, rollback_target
from workbench.errors import WorkbenchError
from workbench.models import SearchLog

DRIFT_P = 0.01
MIN_QUERIES = 30
REFERENCE_DAYS = 7
RECENT_HOURS = 24
LATENCY_WINDOW = timedelta(hours=1)
GOLDEN_METRIC = "nDCG@10"


def live_logs(release: Release) -> QuerySet[SearchLog]:
    """Live searches the release answered (not shadow, not evaluation runs) since it went live."""
    logs = SearchLog.objects.filter(configuration=release.configuration).exclude(arm="shadow").exclude(via="eval")
    if release.activated_at:
        logs = logs.filter(created_at__gte=release.activated_at)
    return logs.filter(top_score__isnull=False)


def drift_report(release: Release, *, now: Any = None) -> dict[str, Any]:
    """Reference (first week) vs recent (last day) top-1 scores: sizes, medians, KS statistic and p-value."""
    from scipy.stats import ks_2samp

    now = now or timezone.now()
    logs = live_logs(release)
    start = release.activated_at or now
    reference = np.array(
        logs.filter(created_at__lt=min(now, start + timedelta(days=REFERENCE_DAYS))).values_list("top_score", flat=True)
    )
    recent = np.array(
        logs.filter(created_at__gte=max(start + timedelta(days=REFERENCE_DAYS), now - timedelta(hours=RECENT_HOURS)))
        .values_list("top_score", flat=True)
    )  # fmt: skip
    out: dict[str, Any] = {"reference_n": int(reference.size), "recent_n": int(recent.size), "p_value": None}
    if reference.size:
        out["reference_median"] = float(np.median(reference))
    if recent.size:
        out["recent_median"] = float(np.median(recent))
    if reference.size >= MIN_QUERIES and recent.size >= MIN_QUERIES:
        test = ks_2samp(reference, recent)
        out.update(statistic=float(test.statistic), p_value=float(test.pvalue), shifted=bool(test.pvalue < DRIFT_P))
    return out


def drift_series(release: Release, *, bins: int = 20) -> dict[str, Any]:
    """Daily medians and a histogram per week of live top-1 scores, for the drift charts."""
    rows = list(live_logs(release).order_by("created_at").values_list("created_at", "top_score"))
    if not rows:
        return {"days": [], "medians": [], "edges": [], "weeks": {}}
    scores = np.array([s for _, s in rows])
    edges = np.histogram_bin_edges(scores, bins=bins)
    by_day: dict[str, list[float]] = {}
    by_week: dict[str, list[float]] = {}
    for created, score in rows:
        by_day.setdefault(created.date().isoformat(), []).append(score)
        iso = created.isocalendar()
        by_week.setdefault(f"{iso.year}-W{iso.week:02d}", []).append(score)
    return {
        "days": list(by_day),
        "medians": [float(np.median(v)) for v in by_day.values()],
        "edges": [float(e) for e in edges],
        "weeks": {w: np.histogram(v, bins=edges)[0].tolist() for w, v in by_week.items()},
    }


def _alert_once(release: Release, kind: str, message: str, data: dict[str, Any], *, within: timedelta) -> bool:
    recent = ReleaseAlert.objects.filter(release=release, kind=kind, created_at__gte=timezone.now() - within)
    if recent.exists():
        return False
    ReleaseAlert.objects.create(release=release, kind=kind, message=message, data=data)
    return True


def _auto_rollback(release: Release, why: str) -> None:
    if not release.auto_rollback or rollback_target(release.project) is None:
        return
    try:
        release_rollback(project=release.project, user=None, reason=f"automatic: {why}")
    except WorkbenchError as exc:
        audit(project=release.project, action="automatic rollback failed", user=None, release=release, error=str(exc))


def monitor_run(*, now: Any = None) -> int:
    """Drift and latency checks for every active release; alerts (and an automatic rollback where enabled)."""
    alerts = 0
    for release in Release.objects.filter(status=Release.Status.ACTIVE).select_related("project", "configuration"):
        drift = drift_report(release, now=now)
        if drift.get("shifted"):
            alerts += _alert_once(
                release, ReleaseAlert.Kind.DRIFT,
                f"Top-1 scores shifted: median {drift['reference_median']:.3f} in the first week, "
                f"{drift['recent_median']:.3f} in the last day (KS p = {drift['p_value']:.2g}).",
                drift, within=timedelta(hours=RECENT_HOURS),
            )  # fmt: skip
        window = live_logs(release).filter(created_at__gte=(now or timezone.now()) - LATENCY_WINDOW)
        totals = np.array(window.values_list("total_ms", flat=True))
        budget = policy_for(release).p95_latency_ms_max
        if totals.size >= MIN_QUERIES and float(np.percentile(totals, 95)) > budget:
            p95 = float(np.percentile(totals, 95))
            if _alert_once(
                release, ReleaseAlert.Kind.LATENCY, f"p95 {p95:.0f} ms over the last hour exceeds {budget:.0f} ms.",
                {"p95_ms": p95, "n": int(totals.size)}, within=LATENCY_WINDOW,
            ):  # fmt: skip
                alerts += 1
                _auto_rollback(release, f"p95 {p95:.0f} ms over budget")
    return alerts


def golden_rerun(*, release: Release, user: Any = None) -> dict[str, Any]:
    """Re-run the release's golden query set now and compare with the figure it was approved on."""
    if release.golden_tag is None:
        raise WorkbenchError(f"{release} has no golden query set.")
    run = eval_run_start(
        project=release.project, user=user, configs=[release.configuration], labels=["golden re-run"],
        tag=release.golden_tag, name=f"Golden re-run of release {release.number}", background=False,
        resamples=1000,
    )  # fmt: skip
    now_value = run_metrics(run.configs.get()).means().get(GOLDEN_METRIC)
    judged_by = (
        EvalConfig.objects.filter(eval_run__in=release.eval_runs.all(), configuration=release.configuration)
        .exclude(eval_run=run)
        .order_by("-eval_run__finished_at")
        .first()
    )
    approved_on = run_metrics(judged_by).means().get(GOLDEN_METRIC) if judged_by else None
    margin = policy_for(release).noninferiority_margin
    out = {"eval_run_id": run.pk, "now": now_value, "approved_on": approved_on, "margin": margin}
    if now_value is not None and approved_on is not None and now_value < approved_on - margin:
        ReleaseAlert.objects.create(
            release=release, kind=ReleaseAlert.Kind.GOLDEN_DROP, data=out,
            message=f"{GOLDEN_METRIC} on {release.golden_tag.name} fell from {approved_on:.3f} to {now_value:.3f}.",
        )  # fmt: skip
        _auto_rollback(release, f"golden {GOLDEN_METRIC} drop")
    audit(project=release.project, action="golden re-run", user=user, release=release, **out)
    return out

"""The monitor: drift of live top-1 scores (two-sample KS), latency over budget and the automatic rollback."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from releases.models import Release, ReleaseAlert
from releases.services import lifecycle, monitor
from tests.releases.factories import release_world
from workbench.models import SearchLog

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(scifact_dir, tiny_encoder_path, eager_celery, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    world = release_world(scifact_dir, tiny_encoder_path, capture=django_capture_on_commit_callbacks)
    project, lead, run = world["project"], world["lead"], world["run"]
    releases = []
    for name in ("bm25", "hybrid"):
        release = lifecycle.release_propose(project=project, configuration=world[name], eval_runs=[run], user=lead)
        lifecycle.release_approve(release=release, user=lead, reason="test")
        current = Release.objects.filter(project=project, status="active").first()
        lifecycle.release_activate(release=release, user=lead, expected_active=current.pk if current else None)
        releases.append(release)
    for r in releases:
        r.refresh_from_db()
    return world, releases


def _logs(release: Release, scores, *, start, step=timedelta(minutes=1), total_ms=10.0) -> None:  # type: ignore[no-untyped-def]
    for i, score in enumerate(scores):
        row = SearchLog.objects.create(
            project=release.project, index=release.configuration.index, configuration=release.configuration,
            mode="hybrid", via="api", timings_ms={}, total_ms=total_ms, top_score=float(score),
        )  # fmt: skip
        SearchLog.objects.filter(pk=row.pk).update(created_at=start + i * step)


def test_drift_is_detected_only_when_scores_shift(live) -> None:  # type: ignore[no-untyped-def]
    _, (_, release) = live
    start = timezone.now() - timedelta(days=10)
    Release.objects.filter(pk=release.pk).update(activated_at=start)
    release.refresh_from_db()
    rng = np.random.default_rng(0)
    _logs(release, rng.normal(0.6, 0.05, 200), start=start)
    _logs(release, rng.normal(0.6, 0.05, 100), start=timezone.now() - timedelta(hours=5))
    same = monitor.drift_report(release)
    assert same["reference_n"] == 200 and same["recent_n"] == 100 and not same["shifted"]
    _logs(release, rng.normal(0.45, 0.05, 100), start=timezone.now() - timedelta(hours=3))
    shifted = monitor.drift_report(release)
    assert shifted["shifted"] and shifted["p_value"] < monitor.DRIFT_P
    assert monitor.monitor_run() == 1 and ReleaseAlert.objects.get().kind == "drift"
    assert monitor.monitor_run() == 0  # one alert per day, not one per run
    series = monitor.drift_series(release)
    assert len(series["days"]) >= 2 and sum(sum(v) for v in series["weeks"].values()) == 400


def test_latency_over_budget_rolls_back_when_enabled(live) -> None:  # type: ignore[no-untyped-def]
    world, (first, second) = live
    lifecycle.release_auto_rollback_set(release=second, user=None, enabled=True)
    Release.objects.filter(pk=second.pk).update(activated_at=timezone.now() - timedelta(minutes=45))
    second.refresh_from_db()
    _logs(second, [0.5] * 40, start=timezone.now() - timedelta(minutes=30), total_ms=5000.0)
    assert monitor.monitor_run() == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "active" and second.status == "retired"
    assert world["project"].serving.configuration == first.configuration
    assert second.events.filter(action="automatic rollback set").exists()
    assert first.events.filter(action="rolled back", detail__reason__startswith="automatic").exists()

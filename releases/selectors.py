"""Reads of the releases app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from django.db.models import QuerySet

from releases.models import AuditEvent, Release
from workbench.models import Project, SearchLog

ARMS = ("active", "canary", "shadow")


def releases_for(project: Project) -> QuerySet[Release]:
    return Release.objects.filter(project=project).select_related(
        "configuration__index__corpus", "configuration__index__encoder", "configuration__reranker", "proposed_by",
        "approved_by",
    )  # fmt: skip


def active_release(project: Project) -> Release | None:
    return releases_for(project).filter(status=Release.Status.ACTIVE).first()


def arm_stats(project: Project, *, since: Any) -> list[dict[str, Any]]:
    """Per release arm over live traffic since ``since``: searches, p50/p95 total ms, top-1 median, overlap."""
    out = []
    for arm in ARMS:
        rows = SearchLog.objects.filter(project=project, arm=arm, created_at__gte=since)
        totals = np.array(rows.values_list("total_ms", flat=True))
        tops = np.array([s for s in rows.values_list("top_score", flat=True) if s is not None])
        overlaps = np.array([v for v in rows.values_list("overlap_at_10", flat=True) if v is not None])
        if not totals.size:
            continue
        out.append(
            {
                "arm": arm,
                "n": int(totals.size),
                "p50": float(np.percentile(totals, 50)),
                "p95": float(np.percentile(totals, 95)),
                "top1_median": float(np.median(tops)) if tops.size else None,
                "overlap_at_10": float(overlaps.mean()) if overlaps.size else None,
            }
        )
    return out


AUDIT_FILTERS = ("action", "release", "actor")


def audit_events(project: Project, filters: Mapping[str, str]) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.filter(project=project).select_related("release", "actor")
    if filters.get("action"):
        events = events.filter(action=filters["action"])
    if str(filters.get("release", "")).isdigit():
        events = events.filter(release__number=int(filters["release"]))
    if filters.get("actor"):
        events = events.filter(actor__username=filters["actor"])
    return events


def audit_actions(project: Project) -> list[str]:
    return sorted(set(AuditEvent.objects.filter(project=project).values_list("action", flat=True)))

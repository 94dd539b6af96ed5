"""Automatic judges: an LLM behind an OpenAI-compatible chat endpoint, or a trained cross-encoder of the project.
One more rater each, never gold.

The ML lead names a base URL, a model and the *name* of an environment variable holding the key (the key itself is
never stored). Grades land in ``AutoGrade`` rows, shown on the agreement page with their kappa against humans.
"""

from __future__ import annotations

import json
import math
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from django.db import transaction

from labeling.models import AutoGrade, Campaign
from workbench.errors import WorkbenchError
from workbench.jobs import job_create
from workbench.models import Job, ModelVersion

AUTOJUDGE_JOB_KIND = "campaign_autojudge"
TIMEOUT_S = 30
MAX_TEXT = 4000


def autojudge_start(
    *, campaign: Campaign, user: Any, base_url: str, model: str, api_key_env: str = "", limit: int = 500
) -> Job:
    base_url = (base_url or "").strip().rstrip("/")
    if not re.match(r"^https?://", base_url):
        raise WorkbenchError("The base URL must start with http:// or https://.")
    if not (model or "").strip():
        raise WorkbenchError("Name the model.")
    if api_key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", api_key_env):
        raise WorkbenchError("The key's environment variable name may hold only letters, digits and underscores.")
    if campaign.status not in (Campaign.Status.OPEN, Campaign.Status.CLOSED):
        raise WorkbenchError("Build the campaign's pool first.")
    with transaction.atomic():
        return job_create(
            project=campaign.project,
            kind=AUTOJUDGE_JOB_KIND,
            title=f"Automatic judge {model} on {campaign.name}",
            params={
                "campaign_id": campaign.pk,
                "base_url": base_url,
                "model": model.strip(),
                "api_key_env": api_key_env,
                "limit": max(1, min(5000, int(limit))),
            },
            user=user,
        )


def autojudge_cross_encoder_start(*, campaign: Campaign, user: Any, model: ModelVersion, limit: int = 500) -> Job:
    """Pre-grade the pool with a trained cross-encoder of the project (one more rater, never gold)."""
    if model.project_id != campaign.project_id or model.kind != ModelVersion.Kind.CROSS_ENCODER:
        raise WorkbenchError("Pick a cross-encoder of this project.")
    if not model.usable_for_search:
        raise WorkbenchError(f"{model.name} has an untrained head; its scores would mean nothing.")
    if campaign.status not in (Campaign.Status.OPEN, Campaign.Status.CLOSED):
        raise WorkbenchError("Build the campaign's pool first.")
    with transaction.atomic():
        return job_create(
            project=campaign.project,
            kind=AUTOJUDGE_JOB_KIND,
            title=f"Automatic judge {model.name} on {campaign.name}",
            params={"campaign_id": campaign.pk, "cross_encoder_id": model.pk, "limit": max(1, min(5000, int(limit)))},
            user=user,
        )


def grade_from_score(score: float, low: int, high: int) -> int:
    """A cross-encoder logit through a sigmoid, cut into equal bands over the scale (crude: not calibrated)."""
    p = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, float(score)))))
    return min(high, low + int(p * (high - low + 1)))


def _cross_encoder_execute(job: Job, campaign: Campaign, progress: Callable[[float, str], None]) -> dict:
    from workbench.retrieval.texts import passage_text
    from workbench.services.engines import reranker_for

    model = ModelVersion.objects.get(pk=job.params["cross_encoder_id"], project=campaign.project)
    judge = f"cross-encoder:{model.name}"
    reranker = reranker_for(model)
    project = campaign.project
    items = list(
        campaign.items.exclude(auto_grades__judge=judge)
        .select_related("query", "document")
        .order_by("query_id", "id")[: job.params["limit"]]
    )
    by_query: dict[int, list] = {}
    for item in items:
        by_query.setdefault(item.query_id, []).append(item)
    done = 0
    for group in by_query.values():
        query = group[0].query.text
        scores = reranker.score(query, [passage_text(i.document.title, i.document.text) for i in group])
        for item, score in zip(group, scores, strict=True):
            grade = grade_from_score(float(score), project.grade_min, project.grade_max)
            AutoGrade.objects.update_or_create(
                item=item, judge=judge, defaults={"grade": grade, "raw": f"score {float(score):.4f}"}
            )
        done += len(group)
        progress(done / max(1, len(items)), f"{done}/{len(items)} pairs")
    return {"message": f"{judge} graded {done} pairs.", "graded": done}


def prompt_for(campaign: Campaign, query: str, title: str, text: str) -> list[dict[str, str]]:
    scale = "; ".join(f"{g} = {label}" for g, label in campaign.project.grades)
    guideline = campaign.guidelines.order_by("-number").values_list("text", flat=True).first() or ""
    system = (
        "You judge how relevant a document is to a search query. Answer with one integer grade only. "
        f"Scale: {scale}." + (f"\nGuidelines:\n{guideline[:2000]}" if guideline else "")
    )
    user = f"Query: {query}\n\nDocument title: {title}\n\nDocument:\n{text[:MAX_TEXT]}\n\nGrade:"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse_grade(answer: str, low: int, high: int) -> int | None:
    for match in re.finditer(r"-?\d+", answer or ""):
        g = int(match.group())
        if low <= g <= high:
            return g
    return None


def chat(base_url: str, model: str, messages: list[dict[str, str]], key: str | None) -> str:
    body = json.dumps({"model": model, "messages": messages, "temperature": 0, "max_tokens": 5}).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"{base_url}/chat/completions", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        payload = json.loads(response.read().decode())
    return str(payload["choices"][0]["message"]["content"])


def autojudge_execute(*, job: Job, progress: Callable[[float, str], None] | None = None) -> dict:
    progress = progress or (lambda f, m: None)
    p = job.params
    campaign = Campaign.objects.select_related("project").get(pk=p["campaign_id"], project=job.project)
    if p.get("cross_encoder_id"):
        return _cross_encoder_execute(job, campaign, progress)
    key = None
    if p.get("api_key_env"):
        key = os.environ.get(p["api_key_env"])
        if not key:
            raise WorkbenchError(f"The environment variable {p['api_key_env']} is not set on the worker.")
    judge = f"llm:{p['model']}"
    project = campaign.project
    items = list(
        campaign.items.exclude(auto_grades__judge=judge)
        .select_related("query", "document")
        .order_by("id")[: p["limit"]]
    )
    graded = unparsed = 0
    for n, item in enumerate(items):
        messages = prompt_for(campaign, item.query.text, item.document.title, item.document.text)
        try:
            answer = chat(p["base_url"], p["model"], messages, key)
        except (urllib.error.URLError, TimeoutError, KeyError, ValueError) as exc:
            raise WorkbenchError(f"The endpoint at {p['base_url']} failed: {exc}") from exc
        grade = parse_grade(answer, project.grade_min, project.grade_max)
        if grade is None:
            unparsed += 1
        else:
            AutoGrade.objects.update_or_create(item=item, judge=judge, defaults={"grade": grade, "raw": answer[:500]})
            graded += 1
        progress((n + 1) / max(1, len(items)), f"{n + 1}/{len(items)} pairs")
    return {"message": f"{judge} graded {graded} pairs ({unparsed} answers without a grade).", "graded": graded}

"""Propose, gate, approve (with an override reason), activate, switch and roll back; the API follows at once."""

from __future__ import annotations

import shutil

import pytest
from django.urls import reverse

from releases.models import AuditEvent, Release
from releases.services import lifecycle
from tests.releases.factories import release_world
from workbench.errors import WorkbenchError
from workbench.services import projects

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(scifact_dir, tiny_encoder_path, eager_celery, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    return release_world(scifact_dir, tiny_encoder_path, capture=django_capture_on_commit_callbacks)


def _answer(client, project, key) -> int:  # type: ignore[no-untyped-def]
    body = client.get(
        reverse("api:search", kwargs={"slug": project.slug}), {"q": "cells"}, HTTP_AUTHORIZATION=f"Token {key}"
    ).json()
    return body["configuration"]["id"]


def test_release_lifecycle_drives_what_the_api_serves(client, world) -> None:  # type: ignore[no-untyped-def]
    project, lead, run = world["project"], world["lead"], world["run"]
    key = projects.api_token_create(user=lead, name="ci")
    first = lifecycle.release_propose(project=project, configuration=world["bm25"], eval_runs=[run], user=lead)
    statuses = {g["name"]: g["status"] for g in first.gates}
    assert statuses["hallucination rate"] == "not computable"  # no answer QA: never shown as passed
    assert statuses["no slice significantly worse than the active release by more than 0.02"] == "not applicable"
    assert first.lineage["index"]["id"] == world["index"].pk and first.golden_tag.name == "test"
    with pytest.raises(WorkbenchError, match="needs a written reason"):
        lifecycle.release_approve(release=first, user=lead)
    lifecycle.release_approve(release=first, user=lead, reason="tiny test model; floors do not apply")
    first.refresh_from_db()
    assert first.status == Release.Status.APPROVED and first.override_reason.startswith("tiny test model")
    lifecycle.release_activate(release=first, user=lead, expected_active=None)
    assert _answer(client, project, key) == world["bm25"].pk

    second = lifecycle.release_propose(project=project, configuration=world["hybrid"], eval_runs=[run], user=lead)
    nonninf = next(g for g in second.gates if g["name"].startswith("no slice"))
    assert nonninf["status"] in ("passed", "failed")  # computed: both were evaluated together
    lifecycle.release_approve(release=second, user=lead, reason="override for the test")
    with pytest.raises(WorkbenchError, match="Someone switched releases meanwhile"):
        lifecycle.release_activate(release=second, user=lead, expected_active=None)  # stale view of what is live
    assert _answer(client, project, key) == world["bm25"].pk  # nothing changed
    lifecycle.release_activate(release=second, user=lead, expected_active=first.pk)
    first.refresh_from_db()
    assert first.status == Release.Status.RETIRED and _answer(client, project, key) == world["hybrid"].pk

    back = lifecycle.release_rollback(project=project, user=lead, reason="hybrid regressed on a slice")
    assert back.pk == first.pk and _answer(client, project, key) == world["bm25"].pk
    assert Release.objects.filter(project=project, status=Release.Status.ACTIVE).count() == 1
    actions = list(AuditEvent.objects.filter(project=project).order_by("id").values_list("action", flat=True))
    for expected in ("proposed", "gates evaluated", "approved over failed gates", "activated", "rolled back"):
        assert expected in actions


def test_activation_refuses_missing_index_files_and_keeps_serving(client, world) -> None:  # type: ignore[no-untyped-def]
    project, lead, run = world["project"], world["lead"], world["run"]
    first = lifecycle.release_propose(project=project, configuration=world["bm25"], eval_runs=[run], user=lead)
    lifecycle.release_approve(release=first, user=lead, reason="test")
    lifecycle.release_activate(release=first, user=lead, expected_active=None)
    second = lifecycle.release_propose(project=project, configuration=world["hybrid"], eval_runs=[run], user=lead)
    lifecycle.release_approve(release=second, user=lead, reason="test")
    moved = world["index"].path + "-moved"
    shutil.move(world["index"].path, moved)
    try:
        with pytest.raises(WorkbenchError, match=r"index files .* are gone"):
            lifecycle.release_activate(release=second, user=lead, expected_active=first.pk)
    finally:
        shutil.move(moved, world["index"].path)
    first.refresh_from_db()
    assert first.status == Release.Status.ACTIVE and project.serving.configuration == world["bm25"]


def test_pages_and_roles(client, world) -> None:  # type: ignore[no-untyped-def]
    project, lead, run = world["project"], world["lead"], world["run"]
    client.force_login(lead)
    response = client.post(
        reverse("releases:new", kwargs={"slug": project.slug}),
        {"configuration": world["bm25"].pk, "eval_runs": [run.pk], "name": "first"},
    )
    release = Release.objects.get(name="first")
    assert response.status_code == 302
    page = client.get(reverse("releases:detail", kwargs={"slug": project.slug, "number": release.number}))
    html = page.content.decode()
    assert "not computable" in html and "needs a written reason" in html
    annotator = project.memberships.get(role="annotator").user
    client.force_login(annotator)
    url = reverse("releases:approve", kwargs={"slug": project.slug, "number": release.number})
    assert client.post(url, {"reason": "x"}).status_code == 403
    release.refresh_from_db()
    assert release.status == Release.Status.PROPOSED
    audit = client.get(reverse("releases:audit", kwargs={"slug": project.slug}), {"format": "csv"})
    assert audit.status_code == 200 and b"proposed" in audit.content


def test_rollback_target_and_candidates_are_kept_warm(world) -> None:  # type: ignore[no-untyped-def]
    from workbench.services.configurations import warm_set

    project, lead, run = world["project"], world["lead"], world["run"]
    first = lifecycle.release_propose(project=project, configuration=world["bm25"], eval_runs=[run], user=lead)
    lifecycle.release_approve(release=first, user=lead, reason="t")
    lifecycle.release_activate(release=first, user=lead, expected_active=None)
    second = lifecycle.release_propose(project=project, configuration=world["hybrid"], eval_runs=[run], user=lead)
    lifecycle.release_approve(release=second, user=lead, reason="t")
    project.serving.refresh_from_db()
    assert project.serving.keep_warm == [world["hybrid"].pk]  # the approved candidate
    lifecycle.release_activate(release=second, user=lead, expected_active=first.pk)
    project.serving.refresh_from_db()
    assert project.serving.keep_warm == [world["bm25"].pk]  # now the rollback target
    assert {c.pk for c in warm_set()} == {world["bm25"].pk, world["hybrid"].pk}

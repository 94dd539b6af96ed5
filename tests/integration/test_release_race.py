"""Two ML leads activate different releases at the same moment, on PostgreSQL: exactly one wins, both see it."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from releases.models import Release
from releases.services import lifecycle
from tests.releases.factories import release_world
from workbench.errors import WorkbenchError
from workbench.services import configurations

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_concurrent_activations_exactly_one_wins(real_services, scifact_dir, tiny_encoder_path, eager_celery) -> None:  # type: ignore[no-untyped-def]
    world = release_world(scifact_dir, tiny_encoder_path)
    project, lead, run = world["project"], world["lead"], world["run"]
    dense = configurations.search_configuration_create(
        configuration=configurations.search_configuration_draft(
            project=project, index=world["index"], mode="dense", name="dense"
        ),
        user=lead,
    )
    made = []
    for configuration in (world["bm25"], world["hybrid"], dense):
        release = lifecycle.release_propose(project=project, configuration=configuration, eval_runs=[run], user=lead)
        lifecycle.release_approve(release=release, user=lead, reason="race test")
        made.append(release)
    active, b, c = made
    lifecycle.release_activate(release=active, user=lead, expected_active=None)
    for r in (b, c):
        lifecycle.release_check_artifacts(r)  # warm nothing here: each thread loads what it needs
    barrier = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def activate(release: Release) -> None:
        try:
            barrier.wait(5)
            lifecycle.release_activate(release=release, user=lead, expected_active=active.pk)
            outcomes[release.pk] = "won"
        except WorkbenchError as exc:
            outcomes[release.pk] = str(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=activate, args=(r,)) for r in (b, c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(v == "won" for v in outcomes.values()) == [False, True], outcomes
    loser = next(v for v in outcomes.values() if v != "won")
    assert "switched releases meanwhile" in loser or "same moment" in loser
    live = Release.objects.filter(project=project, status="active")
    assert live.count() == 1
    winner = live.get()
    project.refresh_from_db()
    assert project.serving.configuration_id == winner.configuration_id

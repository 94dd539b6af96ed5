"""Fixtures shared by the training app's tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def world(scifact_dir, tiny_encoder_path, eager_celery, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """(project, lead, corpus, tiny encoder as the built-in base, its index, a snapshot with a 30 % dev share)."""
    from labeling.services.snapshots import snapshot_freeze  # lazily: the Django-free tests here need no Django
    from tests.factories import make_indexed_project

    project, lead, corpus, encoder, index = make_indexed_project(
        scifact_dir, tiny_encoder_path, as_base_encoder=True, capture=django_capture_on_commit_callbacks
    )
    snapshot = snapshot_freeze(
        project=project, corpus=corpus, name="snap", user=lead, source="imported", dev_fraction=0.3, seed=0
    )
    return project, lead, corpus, encoder, index, snapshot

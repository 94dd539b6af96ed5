from __future__ import annotations

import pytest

from tests.factories import make_indexed_project


@pytest.fixture
def built(scifact_dir, tiny_encoder_path, eager_celery, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """A project with a SciFact slice (tags train/test), a tiny encoder flagged as the base one, and a Flat index."""
    project, lead, corpus, _, index = make_indexed_project(
        scifact_dir, tiny_encoder_path, as_base_encoder=True, capture=django_capture_on_commit_callbacks
    )
    return project, lead, corpus, index

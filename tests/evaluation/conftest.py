from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import make_corpus, make_project
from workbench import indexing
from workbench.imports import beir_import
from workbench.models import IndexVersion, Role
from workbench.retrieval.testing import build_tiny_cross_encoder, build_tiny_encoder


@pytest.fixture(scope="session")
def tiny_encoder_path(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    return build_tiny_encoder(tmp_path_factory.mktemp("eval-tiny") / "enc")


@pytest.fixture(scope="session")
def tiny_cross_encoder_path(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("eval-tiny-cross") / "cross")


@pytest.fixture
def built(scifact_dir, tiny_encoder_path, eager_celery, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """A project with a SciFact slice (tags train/test), a tiny encoder flagged as the base one, and a Flat index."""
    project = make_project(lead=Role.ML_LEAD, ann=Role.ANNOTATOR)
    lead = project.memberships.get(role=Role.ML_LEAD).user
    corpus = make_corpus(project, name="scifact")
    beir_import(project=project, corpus=corpus, folder=scifact_dir, user=lead)
    corpus.refresh_from_db()
    encoder = indexing.model_register(project=project, path=str(tiny_encoder_path), name="tiny", user=lead)
    # Stands in for the built-in MiniLM (too slow for tests): the hard subset is defined by the base encoder.
    encoder.source = "builtin"
    encoder.save(update_fields=["source"])
    with django_capture_on_commit_callbacks(execute=True):
        job = indexing.index_build_start(
            project=project, corpus=corpus, encoder=encoder, index_type="flat", params={}, user=lead
        )
    job.refresh_from_db()
    assert job.status == "succeeded", (job.message, job.log_tail)
    return project, lead, corpus, IndexVersion.objects.get(project=project)

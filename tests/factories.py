"""Factories for tests: small, explicit, no JSON fixtures."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from django.contrib.auth import get_user_model

from workbench.models import Corpus, Membership, Project, Role

_seq = itertools.count(1)
PASSWORD = "test-password-123"


def make_user(username: str | None = None, **extra):  # type: ignore[no-untyped-def]
    User = get_user_model()
    user = User.objects.create_user(username=username or f"user{next(_seq)}", password=PASSWORD, **extra)
    return user


def make_project(name: str | None = None, **members: str) -> Project:
    """A project; ``members`` maps username -> role (users are created)."""
    n = next(_seq)
    project = Project.objects.create(name=name or f"Project {n}", slug=f"project-{n}")
    for username, role in members.items():
        Membership.objects.create(project=project, user=make_user(username), role=role)
    return project


def make_corpus(project: Project, name: str = "docs", **kw) -> Corpus:  # type: ignore[no-untyped-def]
    return Corpus.objects.create(project=project, name=name, **kw)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_beir(
    folder: Path, docs: list[dict], queries: list[dict], qrels: dict[str, list[tuple[str, str, int]]]
) -> Path:
    write_jsonl(folder / "corpus.jsonl", docs)
    write_jsonl(folder / "queries.jsonl", queries)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    for split, rows in qrels.items():
        (folder / "qrels" / f"{split}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{g}\n" for q, d, g in rows), encoding="utf-8"
        )
    return folder


ROLES = [Role.ANNOTATOR, Role.REVIEWER, Role.ML_LEAD, Role.ADMIN]


def make_indexed_project(scifact_dir: Path, encoder_path: Path, *, as_base_encoder: bool = False, capture=None):  # type: ignore[no-untyped-def]
    """A project (ML lead `lead`, annotator `ann`) with a SciFact slice and a Flat index built through the real job.

    Celery must be eager. Inside a test transaction pass ``capture`` (pytest-django's
    ``django_capture_on_commit_callbacks``) so the job runs at once; transactional tests run it on commit anyway.
    ``as_base_encoder`` makes the tiny encoder stand in for the built-in MiniLM (too slow for tests).
    Returns (project, lead, corpus, encoder, index).
    """
    from contextlib import nullcontext

    from workbench.models import IndexVersion, Job
    from workbench.services import indexes
    from workbench.services.imports import beir_import

    project = make_project(lead=Role.ML_LEAD, ann=Role.ANNOTATOR)
    lead = project.memberships.get(role=Role.ML_LEAD).user
    corpus = make_corpus(project, name="scifact")
    beir_import(project=project, corpus=corpus, folder=scifact_dir, user=lead)
    corpus.refresh_from_db()
    encoder = indexes.model_register(project=project, path=str(encoder_path), name="tiny", user=lead)
    if as_base_encoder:
        encoder.source = "builtin"
        encoder.save(update_fields=["source"])
    with capture(execute=True) if capture else nullcontext():
        job = indexes.index_build_start(
            project=project, corpus=corpus, encoder=encoder, index_type="flat", params={}, user=lead
        )
    job = Job.objects.get(pk=job.pk)
    assert job.status == "succeeded", (job.message, job.log_tail)
    return project, lead, corpus, encoder, IndexVersion.objects.get(project=project)


def make_snapshot(project: Project, corpus: Corpus, name: str = "snap"):  # type: ignore[no-untyped-def]
    """An empty imported label snapshot of ``corpus`` (pages and runs that only need one to point at)."""
    from labeling.models import LabelSnapshot

    return LabelSnapshot.objects.create(
        project=project, corpus=corpus, corpus_version=0, name=name, source="imported", content_hash="h",
        relevance_threshold=1, grade_min=0, grade_max=1,
    )  # fmt: skip

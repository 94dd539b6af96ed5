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

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tests.retrieval.fixtures import tiny_cross_encoder_path, tiny_encoder_path  # noqa: F401  (shared fixtures)

SCIFACT = Path(os.environ.get("SCIFACT_DIR", Path(__file__).resolve().parents[2] / "shared" / "datasets" / "scifact"))


@pytest.fixture
def eager_celery(settings):  # type: ignore[no-untyped-def]
    """Run Celery tasks in-process (app tests); the integration suite uses a real worker instead."""
    from workbench.celery import app

    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = old


@pytest.fixture(autouse=True)
def _isolated_dirs(request, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Uploads and artifacts of each test go to its own tmp dir (Django-free suites run without pytest-django)."""
    if not request.config.pluginmanager.hasplugin("django"):
        return
    settings = request.getfixturevalue("settings")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
    root = tmp_path_factory.mktemp("var")  # not tmp_path: tests list their own tmp_path
    settings.UPLOAD_DIR = root / "uploads"
    settings.ARTIFACTS_DIR = root / "artifacts"
    settings.UPLOAD_DIR.mkdir()
    settings.ARTIFACTS_DIR.mkdir()


def scifact_slice(dest: Path, *, n_queries: int = 20) -> Path:
    """A small real slice of SciFact in BEIR form: some train and test queries, their judged docs plus distractors."""
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact not found at {SCIFACT}")
    qrels: dict[str, list[tuple[str, str, int]]] = {}
    for split in ("train", "test"):
        rows = [ln.split("\t") for ln in (SCIFACT / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]]
        picked: list[tuple[str, str, int]] = []
        qids: list[str] = []
        for q, d, g in rows:
            if q not in qids:
                if len(qids) == n_queries // 2:
                    continue
                qids.append(q)
            picked.append((q, d, int(g)))
        qrels[split] = picked
    doc_ids = {d for rows in qrels.values() for _, d, _ in rows}
    query_ids = {q for rows in qrels.values() for q, _, _ in rows}
    docs, distractors = [], 0
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            if doc["_id"] in doc_ids or distractors < 40:
                distractors += doc["_id"] not in doc_ids
                docs.append(doc)
    queries = [json.loads(ln) for ln in (SCIFACT / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    from tests.factories import write_beir

    return write_beir(dest, docs, [q for q in queries if q["_id"] in query_ids], qrels)


@pytest.fixture
def scifact_dir(tmp_path: Path) -> Path:
    return scifact_slice(tmp_path / "scifact")

"""Shared set-up of the training benchmarks: SciFact imported through the app into a throwaway database, a frozen
``imported`` snapshot (test queries held out by their tag, dev carved from train), and the base index's vectors for
mining. Call after ``django.setup()``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.management import call_command

from labeling.selectors import snapshot_data
from labeling.services.snapshots import snapshot_freeze
from training.ml.datasets import DocumentVectors
from training.selectors import training_corpus
from workbench.models import Corpus, Project
from workbench.retrieval.encoders import encode_passages, load_encoder
from workbench.retrieval.index_build import build_index
from workbench.retrieval.search import LoadedIndex
from workbench.services.imports import beir_import


@dataclass
class ScifactSnapshot:
    data: Any  # labeling.selectors.SnapshotData
    collection: dict[str, str]  # document id -> the text training mines over
    counts: dict[str, int]  # queries per split


def scifact_snapshot(stamp: str, log: Any) -> ScifactSnapshot:
    """Import SciFact with ``beir_import`` and freeze its train labels (dev 15 %, seed 0) as the app does."""
    call_command("migrate", verbosity=0)
    project = Project.objects.create(name=f"bench {stamp}", slug=f"bench-{stamp}")
    corpus = Corpus.objects.create(project=project, name="scifact")
    log("importing SciFact")
    beir_import(project=project, corpus=corpus, folder=settings.SCIFACT_DIR, user=None)
    snapshot = snapshot_freeze(
        project=project, corpus=corpus, name="scifact train", user=None, source="imported", dev_fraction=0.15, seed=0
    )
    data = snapshot_data(snapshot)
    collection = training_corpus(corpus)
    counts = {s: len(data.query_ids(s)) for s in ("train", "dev", "test")}
    log(f"snapshot {data.content_hash[:12]}: {counts}, collection {len(collection)} documents")
    return ScifactSnapshot(data=data, collection=collection, counts=counts)


def index_for(
    model_path: Path, out: Path, passages: list, texts: list[str], log: Any
) -> tuple[LoadedIndex, np.ndarray]:
    """Embed ``texts`` with the model and build an exact index of them (as the app's index build does)."""
    t0 = time.perf_counter()
    emb = encode_passages(load_encoder(model_path), texts, batch_size=32, precision="auto")
    log(f"  embedded {len(texts)} documents with {model_path.name} in {time.perf_counter() - t0:.0f} s")
    build_index(
        out_dir=out, passages=passages, encoder_path=model_path, index_type="flat", embeddings=emb, store_texts=False
    )
    return LoadedIndex(out), emb


def served_vectors(
    doc_ids: list[str], texts: list[str], emb: np.ndarray, collection: dict[str, str]
) -> DocumentVectors:
    """The base index's vectors of the documents whose indexed text is the text training mines over (the first
    passage; a chunked abstract's first passage differs from the whole abstract and is embedded by mining). Compared
    up to whitespace: the app joins title and text with a newline, BEIR with a space, and BERT's tokenizer splits both
    the same way, so the encoder sees identical token ids."""
    rows = [i for i, d in enumerate(doc_ids) if " ".join(collection.get(d, "").split()) == " ".join(texts[i].split())]
    return DocumentVectors([doc_ids[i] for i in rows], emb[rows])


def result_summary(r: Any) -> dict:
    """A ``TrainResult`` as a benchmark JSON records it."""
    return {
        "verdict": r.verdict,
        "improved": r.improved,
        "dev_metric": r.dev_metric,
        "base_dev": r.base_dev,
        "best_dev": r.best_dev,
        "dev_history": r.dev_history,
        "loss_history": r.loss_history,
        "steps": r.steps,
        "train_seconds": round(r.train_seconds),
        "warnings": r.warnings,
        "counts": r.counts,
        "artifact": str(r.artifact_path or ""),
    }

"""Benchmark: index rebuilds that reuse an earlier index's vectors (``workbench.retrieval.vector_reuse``).

The whole SciFact collection (one passage per abstract, title + text, as the app indexes it) is built once from
scratch, with answer sentences, as a first build does. Then two rebuilds read that index's vectors back:

- ``after_import``: the corpus an import leaves, 10 % of the abstracts edited (a sentence put in front), 5 % removed
  and 5 % new ones added (``EDITED``, ``REMOVED``, ``ADDED`` shares); only the edited and new passages and their
  sentences are embedded;
- ``other_parameters``: the same corpus as HNSW instead of Flat; nothing is embedded.

For each: seconds of the whole build, of embedding passages and sentences, the vectors reused, and the speed-up
against the first build. Fidelity: the reused rows are copies of the earlier rows (checked bit for bit), and a
sample of reused passages (``CHECK``, 200) is embedded afresh to report their cosine to what was reused.

  .venv/bin/python bench/index_rebuild.py     (ATEN_CPU_CAPABILITY=avx2 ... for AVX2 figures; SENTENCES=0 to skip)

JSON to bench/results/index_rebuild.json with the machine inside.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from bench._scifact import load_documents, write_result  # noqa: E402
from workbench.retrieval.encoders import base_model_path, encode_passages, load_encoder  # noqa: E402
from workbench.retrieval.faiss_index import load_dense_index  # noqa: E402
from workbench.retrieval.index_build import build_index  # noqa: E402
from workbench.retrieval.texts import passage_text  # noqa: E402
from workbench.retrieval.vector_reuse import earlier_vectors  # noqa: E402

EDITED = float(os.environ.get("EDITED", 0.10))
REMOVED = float(os.environ.get("REMOVED", 0.05))
ADDED = float(os.environ.get("ADDED", 0.05))
CHECK = int(os.environ.get("CHECK", 200))
SENTENCES = os.environ.get("SENTENCES", "1") != "0"


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def build(out: Path, docs: list[tuple[str, str]], **kwargs) -> dict:  # type: ignore[no-untyped-def]
    """Build over ``docs`` (passage id = position + 1) as the app does: title + body indexed, bodies' sentences."""
    passages = [(i + 1, passage_text(title, body)) for i, (title, body) in enumerate(docs)]
    manifest = build_index(
        out_dir=out,
        passages=passages,
        encoder_path=base_model_path(),
        sentence_texts=[body for _, body in docs] if SENTENCES else None,
        log=log,
        **kwargs,
    )
    m = manifest["metrics"]
    return {
        "passages": len(passages),
        "index_type": manifest["index_type"],
        "precision": manifest["parameters"]["precision"],
        "build_seconds": m["build_seconds"],
        "embed_seconds": m["embed_seconds"],
        "sentence_seconds": m["sentence_seconds"],
        "reused_vectors": m["reused_vectors"],
        "reused_sentence_vectors": m["reused_sentence_vectors"],
        "sentences": manifest["sentence_count"],
    }


def after_import(docs: list[tuple[str, str]], rng: random.Random) -> list[tuple[str, str]]:
    n = len(docs)
    order = list(range(n))
    rng.shuffle(order)
    removed = set(order[: int(n * REMOVED)])
    edited = set(order[int(n * REMOVED) : int(n * (REMOVED + EDITED))])
    out = []
    for i, (title, body) in enumerate(docs):
        if i in removed:
            continue
        out.append((title, f"This abstract was revised in the second edition. {body}" if i in edited else body))
    for i in order[-int(n * ADDED) :]:  # new documents: other abstracts' bodies under a new title, so new texts
        out.append((f"Replication: {docs[i][0]}", docs[i][1]))
    return out


def main() -> None:
    torch.set_num_threads(int(os.environ.get("THREADS", 2)))
    work = Path(tempfile.mkdtemp(prefix="bench-rebuild-"))
    docs = list(load_documents().values())
    if os.environ.get("PASSAGES"):
        docs = docs[: int(os.environ["PASSAGES"])]
    load_encoder(base_model_path())  # loaded (and cached) before the clock: every build below finds it loaded
    try:
        log(f"first build: {len(docs):,} passages from scratch")
        first = build(work / "v1", docs)
        earlier, why = earlier_vectors(work / "v1", label="v1")
        assert earlier is not None, why
        changed = after_import(docs, random.Random(0))
        log("rebuild after an import")
        imported = build(work / "v2", changed, earlier=earlier)
        log("rebuild with other parameters (HNSW)")
        hnsw = build(work / "v3", docs, earlier=earlier, index_type="hnsw")
        # Fidelity: reused rows are the earlier rows; and what a fresh encoding of some of them gives.
        v1_dense, v3_dense = load_dense_index(work / "v1"), load_dense_index(work / "v3")
        identical = bool(np.array_equal(v1_dense.stored_vectors(), v3_dense.stored_vectors()))
        sample = sorted(random.Random(1).sample(range(len(docs)), min(CHECK, len(docs))))
        fresh = encode_passages(
            load_encoder(base_model_path()), [passage_text(*docs[i]) for i in sample], precision="float32"
        )
        reused = np.asarray(v3_dense.stored_vectors()[sample], dtype=np.float32)
        cosine = (fresh * reused).sum(axis=1) / np.linalg.norm(fresh, axis=1) / np.linalg.norm(reused, axis=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def speedup(run: dict) -> dict:
        embed_first = first["embed_seconds"] + first["sentence_seconds"]
        embed_now = run["embed_seconds"] + run["sentence_seconds"]
        return {
            "build": round(first["build_seconds"] / run["build_seconds"], 2),
            "embedding": round(embed_first / embed_now, 2) if embed_now else None,
        }

    write_result(
        "index_rebuild",
        {
            "benchmark": "index_rebuild",
            "machine": {**machine_info(), "isa_cap": os.environ.get("ATEN_CPU_CAPABILITY", "")},
            "shares": {"edited": EDITED, "removed": REMOVED, "added": ADDED},
            "first_build": first,
            "after_import": {**imported, "speedup_vs_first": speedup(imported)},
            "other_parameters": {**hnsw, "speedup_vs_first": speedup(hnsw)},
            "fidelity": {
                "reused_rows_identical_to_earlier": identical,
                "fresh_float32_cosine_of_reused": {
                    "n": len(sample),
                    "min": round(float(cosine.min()), 6),
                    "mean": round(float(cosine.mean()), 6),
                },
            },
        },
    )


if __name__ == "__main__":
    main()

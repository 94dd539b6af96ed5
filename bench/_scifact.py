"""SciFact (BEIR layout) loading and cached MiniLM embeddings shared by the retrieval benchmarks.

Dataset directory: ``$SCIFACT_DIR`` (default ../shared/datasets/scifact beside the repository).
Documents are ``title + " " + text`` (the BEIR convention). Embeddings are cached in ``bench/.cache/`` (gitignored),
keyed by the encoder's fingerprint, the corpus file and the precision, so every bench embeds the 5,183 abstracts at most
once (~3-4 min on 2 cores).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from workbench.retrieval.encoders import (  # noqa: E402
    base_model_path,
    encode_passages,
    encode_query,
    load_encoder,
    model_fingerprint,
)

CACHE_DIR = ROOT / "bench" / ".cache"


def scifact_dir() -> Path:
    """The SciFact directory (``$SCIFACT_DIR`` or the shared default); exits with a message if it is missing."""
    d = Path(os.environ.get("SCIFACT_DIR", ROOT.parent / "shared" / "datasets" / "scifact"))
    if not (d / "corpus.jsonl").is_file():
        sys.exit(f"SciFact not found in {d}: set SCIFACT_DIR to a BEIR-layout scifact directory")
    return d


def load_corpus() -> tuple[np.ndarray, list[str]]:
    """Document ids (int64, file order) and texts (title + " " + text)."""
    ids, texts = [], []
    with open(scifact_dir() / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            ids.append(int(row["_id"]))
            texts.append(f"{row.get('title', '')} {row['text']}".strip())
    return np.asarray(ids, dtype=np.int64), texts


def load_documents() -> dict[str, tuple[str, str]]:
    """Every document's (title, text) by id, file order: the parts the app indexes and cites apart."""
    out = {}
    with open(scifact_dir() / "corpus.jsonl", encoding="utf-8") as f:
        for row in map(json.loads, f):
            out[row["_id"]] = (row.get("title", ""), row["text"])
    return out


def load_queries() -> dict[str, str]:
    """All queries (train and test claims) by id."""
    with open(scifact_dir() / "queries.jsonl", encoding="utf-8") as f:
        return {row["_id"]: row["text"] for row in map(json.loads, f)}


def load_qrels(split: str = "test") -> dict[str, dict[str, int]]:
    """Relevance judgments of a split, as pytrec_eval wants them: {query id: {doc id: grade}}."""
    qrels: dict[str, dict[str, int]] = {}
    with open(scifact_dir() / "qrels" / f"{split}.tsv", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return qrels


def _cache_path(kind: str, precision: str, model_path: Path) -> Path:
    corpus = scifact_dir() / "corpus.jsonl"
    key = f"{model_fingerprint(model_path)}|{corpus.stat().st_size}|{precision}|{kind}"
    return CACHE_DIR / f"scifact-{kind}-{precision}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.npy"


def corpus_embeddings(precision: str = "float32", model_path: Path | None = None) -> np.ndarray:
    """Normalised embeddings of every SciFact document (rows in ``load_corpus`` order), cached on disk."""
    model_path = model_path or base_model_path()
    path = _cache_path("corpus", precision, model_path)
    if path.is_file():
        return np.load(path)
    _, texts = load_corpus()
    print(f"embedding {len(texts)} SciFact documents ({precision}); cached in {path}", file=sys.stderr)
    t0 = time.perf_counter()
    vectors = encode_passages(load_encoder(model_path), texts, batch_size=32, precision=precision)
    print(f"  done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    save_cached(path, vectors)
    return vectors


def query_embeddings(model_path: Path | None = None) -> tuple[list[str], np.ndarray]:
    """Query ids and normalised query embeddings (``encode_query``, one at a time as at serving), cached."""
    model_path = model_path or base_model_path()
    path = _cache_path("queries", "float32", model_path)
    queries = load_queries()
    qids = sorted(queries, key=int)
    if path.is_file():
        return qids, np.load(path)
    model = load_encoder(model_path)
    vectors = np.stack([encode_query(model, queries[q]) for q in qids])
    save_cached(path, vectors)
    return qids, vectors


def save_cached(path: Path, array: np.ndarray) -> None:
    """Write a cache file atomically (a killed bench never leaves a truncated cache behind)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def write_result(name: str, result: dict) -> Path:
    """Print the result as JSON and write it to ``bench/results/<name>.json`` (``BENCH_RESULT_NAME`` renames it,
    e.g. to keep another machine's result beside this one)."""
    name = os.environ.get("BENCH_RESULT_NAME") or name
    text = json.dumps(result, indent=2)
    print(text)
    out = ROOT / "bench" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    return out

"""Training data from a snapshot: checks, (query, positive) pairs, mined hard negatives and the dev evaluation set.

Negatives come first from the snapshot's audited negatives, then from ``sentence_transformers.util.mine_hard_negatives``
with the base model: candidates ranked ``range_min``..``range_max`` that score at least ``relative_margin`` (a share of
the positive's score) below the query's best positive, so unlabelled relevant passages are rarely taught as negatives.
Every positive of the query is excluded, and nothing from dev or test queries reaches training.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.ml.config import MiningSettings, TrainingInputError
from training.ml.data import SnapshotData


@dataclass
class PreparedData:
    """What a trainer consumes: training rows and the dev evaluation set, all as text."""

    train_pairs: list[tuple[str, str, str]]  # (query id, query text, positive document id)
    dev_queries: dict[str, str]
    dev_relevant: dict[str, set[str]]
    corpus: dict[str, str]  # document id -> text (what the encoder reads)
    counts: dict[str, int] = field(default_factory=dict)
    audited: dict[str, list[str]] = field(default_factory=dict)  # train query id -> audited negative document ids


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def check_snapshot(data: SnapshotData) -> set[str]:
    """Refuse snapshots training cannot use; return the train queries to leave out.

    No positives on the train split is an error. A train query whose text is also a dev or test query's (SciFact has
    two) would leak held-out labels into training: it is left out, and when nothing is left that is an error too."""
    train = data.query_ids("train")
    with_positives = [q for q in train if data.positives(q)]
    if not with_positives:
        raise TrainingInputError(
            "The snapshot has no positive judgments on its train split: label some relevant documents first."
        )
    held = {_norm(data.queries.get(q, "")) for q in data.query_ids("test") + data.query_ids("dev")}
    leaked = {q for q in train if _norm(data.queries.get(q, "")) in held}
    if set(with_positives) <= leaked:
        raise TrainingInputError(
            "Every train query is also a dev or test query (same text): freeze a snapshot whose split keeps them apart."
        )
    if not any(data.document_text(d) for q in with_positives for d in data.positives(q)):
        raise TrainingInputError("None of the snapshot's positive documents has any text to train on.")
    return leaked


def prepare(data: SnapshotData, corpus: dict[str, str] | None = None) -> PreparedData:
    """Pairs from the train split, the dev set, and the text corpus negatives are mined from.

    ``corpus`` (document id -> text) is the whole collection when the caller has it; otherwise the snapshot's documents.
    """
    leaked = check_snapshot(data)
    texts = dict(corpus) if corpus else {}
    for doc in data.passages:
        texts.setdefault(doc, data.document_text(doc))
    texts = {d: t for d, t in texts.items() if t}
    pairs = [
        (q, data.queries[q], d)
        for q in data.query_ids("train")
        for d in data.positives(q)
        if d in texts and data.queries.get(q) and q not in leaked
    ]
    dev_relevant = {q: {d for d in data.positives(q) if d in texts} for q in data.query_ids("dev")}
    dev_relevant = {q: ds for q, ds in dev_relevant.items() if ds and data.queries.get(q)}
    counts = {
        "train_queries": len({p[0] for p in pairs}),
        "train_queries_left_out_as_also_held_out": len(leaked),
        "train_pairs": len(pairs),
        "dev_queries": len(dev_relevant),
        "test_queries": len(data.query_ids("test")),
        "corpus_documents": len(texts),
        "audited_negatives": sum(len(v) for q, v in data.negatives.items() if data.splits.get(q) == "train"),
    }
    audited = {q: list(ds) for q, ds in data.negatives.items() if data.splits.get(q) == "train" and ds}
    return PreparedData(pairs, {q: data.queries[q] for q in dev_relevant}, dev_relevant, texts, counts, audited)


@dataclass(frozen=True)
class DocumentVectors:
    """Vectors the mining model already computed for documents (e.g. the rows of an index built with it): row i is
    document ``doc_ids[i]``, L2-normalised. Mining reads these instead of embedding the whole collection again."""

    doc_ids: list[str]
    matrix: np.ndarray

    def __post_init__(self) -> None:
        if self.matrix.ndim != 2 or self.matrix.shape[0] != len(self.doc_ids):
            raise ValueError(f"{len(self.doc_ids)} document ids but vectors of shape {self.matrix.shape}")


class _KnownDocuments:
    """The mining model with ``encode_document`` answered from known vectors; only unknown texts are encoded.

    ``mine_hard_negatives`` asks the model for normalised numpy embeddings of the de-duplicated corpus; everything else
    (queries, device, dimension, similarity) goes to the model itself."""

    def __init__(self, model: Any, rows_by_text: dict[str, int], matrix: np.ndarray) -> None:
        self._model, self._rows, self._matrix = model, rows_by_text, matrix
        self.encoded = 0  # texts that had to be embedded after all

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode_document(self, sentences: list[str], **kwargs: Any) -> np.ndarray:
        missing = [t for t in dict.fromkeys(sentences) if t not in self._rows]
        fresh: dict[str, np.ndarray] = {}
        if missing:
            self.encoded += len(missing)
            fresh = dict(zip(missing, np.asarray(self._model.encode_document(missing, **kwargs)), strict=True))
        out = np.empty((len(sentences), self._matrix.shape[1]), dtype=np.float32)
        for i, text in enumerate(sentences):
            row = self._rows.get(text)
            out[i] = self._matrix[row] if row is not None else fresh[text]
        return out


def with_known_documents(model: Any, corpus: dict[str, str], vectors: DocumentVectors | None) -> Any:
    """``model`` for ``mine``, reading the documents of ``corpus`` that ``vectors`` holds instead of encoding them."""
    if vectors is None:
        return model
    dim = model.get_embedding_dimension()
    if vectors.matrix.shape[1] != dim:
        raise ValueError(f"stored vectors have dimension {vectors.matrix.shape[1]}, the mining model {dim}")
    rows = {corpus[d]: i for i, d in enumerate(vectors.doc_ids) if d in corpus}
    return _KnownDocuments(model, rows, vectors.matrix)


def mine(
    model: Any,
    queries: list[tuple[str, str, str]],
    corpus: dict[str, str],
    mining: MiningSettings,
    *,
    num_negatives: int | None = None,
    cache_folder: str | None = None,
    batch_size: int = 32,
    positive_scores: dict[str, dict[str, float]] | None = None,
    known: DocumentVectors | None = None,
) -> dict[str, list[tuple[str, float]]]:
    """Hard negatives per query id: [(document id, base score)], best first, via ``mine_hard_negatives``.

    ``positive_scores``, when given, is filled with the base model's score of each (query, positive) pair.
    ``known``: this model's vectors of (some of) the documents, read instead of encoding those again."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    k = mining.num_negatives if num_negatives is None else num_negatives
    if not queries or k < 1:
        return {}
    doc_ids = list(corpus)
    texts = [corpus[d] for d in doc_ids]
    by_text: dict[str, str] = {}
    for d, t in zip(doc_ids, texts, strict=True):
        by_text.setdefault(t, d)
    dataset = Dataset.from_dict({"query": [q[1] for q in queries], "positive": [corpus[q[2]] for q in queries]})
    range_max = max(mining.range_max, mining.range_min + k)
    mined = mine_hard_negatives(
        dataset,
        with_known_documents(model, corpus, known),
        corpus=texts,
        range_min=mining.range_min,
        range_max=min(range_max, max(1, len(set(texts)) - 1)),
        relative_margin=mining.relative_margin or None,
        num_negatives=k,
        sampling_strategy="top",
        output_format="triplet",
        output_scores=True,
        batch_size=batch_size,
        verbose=False,
        cache_folder=cache_folder,
    )
    qid_by_text: dict[str, list[str]] = {}
    for qid, text, _ in queries:
        qid_by_text.setdefault(text, [])
        if qid not in qid_by_text[text]:
            qid_by_text[text].append(qid)
    out: dict[str, list[tuple[str, float]]] = {}
    for row in mined:
        doc = by_text.get(row["negative"])
        if doc is None:
            continue
        for qid in qid_by_text.get(row["query"], []):
            if positive_scores is not None and row["positive"] in by_text:
                positive_scores.setdefault(qid, {})[by_text[row["positive"]]] = float(row["scores"][0])
            got = out.setdefault(qid, [])
            if all(doc != g[0] for g in got):
                got.append((doc, float(row["scores"][1])))
    for got in out.values():
        got.sort(key=lambda x: (-x[1], x[0]))
    return out


def dev_corpus(
    prepared: PreparedData, dev_negatives: dict[str, list[tuple[str, float]]], *, limit: int, seed: int
) -> dict[str, str]:
    """The documents the dev evaluation ranks: every dev positive, the base model's hard candidates, then a seeded
    sample of the rest (a bounded stand-in for the full collection, so each evaluation stays cheap)."""
    chosen: dict[str, None] = {}
    for docs in prepared.dev_relevant.values():
        chosen.update(dict.fromkeys(sorted(docs)))
    for q in sorted(dev_negatives):
        chosen.update(dict.fromkeys(d for d, _ in dev_negatives[q]))
    rest = sorted(set(prepared.corpus) - set(chosen))
    random.Random(seed).shuffle(rest)
    for d in rest[: max(0, limit - len(chosen))]:
        chosen[d] = None
    return {d: prepared.corpus[d] for d in chosen}


def random_negative(corpus_ids: list[str], exclude: set[str], rng: random.Random) -> str | None:
    for _ in range(20):
        d = rng.choice(corpus_ids)
        if d not in exclude:
            return d
    return None

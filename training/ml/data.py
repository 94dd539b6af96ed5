"""A frozen label snapshot as plain data: what every training function takes.

Built by the labeling app from a ``LabelSnapshot`` (``labeling.selectors.snapshot_data``), or by hand. Ids are the
external ids of queries and documents; passage texts are already what the encoder reads at indexing time
(``workbench.retrieval.texts.passage_text``: title + chunk), so training and serving see the same text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class SnapshotData:
    content_hash: str
    queries: dict[str, str]  # query id -> text
    splits: dict[str, str]  # query id -> "train" | "dev" | "test"
    qrels: dict[str, dict[str, int]]  # query id -> document id -> gold grade
    passages: dict[str, list[tuple[int, str]]]  # document id -> [(passage id, text the encoder reads)], in order
    negatives: dict[str, list[str]] = field(default_factory=dict)  # query id -> audited non-relevant document ids
    relevance_threshold: int = 1
    synthetic: bool = False

    def query_ids(self, split: str) -> list[str]:
        """Query ids of one split, sorted (a stable order for seeded sampling)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; splits are {', '.join(SPLITS)}")
        return sorted(q for q, s in self.splits.items() if s == split)

    def positives(self, qid: str) -> list[str]:
        """Relevant document ids of a query, best grade first (ties by id)."""
        grades = self.qrels.get(qid, {})
        return sorted((d for d, g in grades.items() if g >= self.relevance_threshold), key=lambda d: (-grades[d], d))

    def document_text(self, doc_id: str) -> str:
        """The first passage's text: the document as one training text (most documents are one passage)."""
        passages = self.passages.get(doc_id) or []
        return passages[0][1] if passages else ""

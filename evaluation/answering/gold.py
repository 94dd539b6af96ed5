"""Gold evidence from SciFact's original release: rationale sentences per (claim, document), as character spans.

BEIR's SciFact documents are ``" ".join(sentence.strip() for sentence in abstract)`` of ``original/corpus.jsonl``, so
sentence ``i`` of a document is a known character span of the document text the workbench stores. A claim whose
``evidence`` is empty is NEI ("not enough info"): the right behaviour is to abstain.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

CLAIM_FILES = ("claims_dev.jsonl", "claims_train.jsonl")  # claims_test.jsonl has no labels


@dataclass
class GoldClaim:
    qid: str
    # doc id -> {sentence index: "SUPPORT" | "CONTRADICT"}
    rationales: dict[str, dict[int, str]] = field(default_factory=dict)

    @property
    def nei(self) -> bool:
        return not self.rationales

    @property
    def n_sentences(self) -> int:
        return sum(len(s) for s in self.rationales.values())


def load_claims(original_dir: str | os.PathLike[str], *, files: Iterable[str] = CLAIM_FILES) -> dict[str, GoldClaim]:
    """Claim id (= BEIR query id) -> gold rationales, from the labelled claim files present."""
    out: dict[str, GoldClaim] = {}
    for name in files:
        path = Path(original_dir) / name
        if not path.is_file():
            continue
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                claim = GoldClaim(str(row["id"]))
                for doc, sets in (row.get("evidence") or {}).items():
                    for s in sets:
                        for i in s["sentences"]:
                            claim.rationales.setdefault(str(doc), {})[int(i)] = s["label"]
                out[claim.qid] = claim
    return out


def sentence_spans(original_dir: str | os.PathLike[str], doc_ids: Iterable[str]) -> dict[str, list[tuple[int, int]]]:
    """Doc id -> character span of each abstract sentence in the BEIR document text."""
    wanted = {str(d) for d in doc_ids}
    out: dict[str, list[tuple[int, int]]] = {}
    path = Path(original_dir) / "corpus.jsonl"
    if not wanted or not path.is_file():
        return out
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            doc = str(row["doc_id"])
            if doc not in wanted:
                continue
            spans, pos = [], 0
            for sentence in row["abstract"]:
                s = sentence.strip()
                spans.append((pos, pos + len(s)))
                pos += len(s) + 1
            out[doc] = spans
    return out


def span_overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Two spans are the same evidence when they share at least half of the shorter one."""
    shared = min(a[1], b[1]) - max(a[0], b[0])
    shorter = min(a[1] - a[0], b[1] - b[0])
    return shorter > 0 and shared * 2 >= shorter


def cited_rationales(
    claim: GoldClaim, doc_id: str, span: tuple[int, int], spans: dict[str, list[tuple[int, int]]]
) -> set[int]:
    """Gold rationale sentences of ``doc_id`` that a cited document span covers."""
    gold = claim.rationales.get(str(doc_id), {})
    doc_spans = spans.get(str(doc_id), [])
    return {i for i in gold if i < len(doc_spans) and span_overlaps(span, doc_spans[i])}

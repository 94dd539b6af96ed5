"""Query slices (tags, the hard subset) and per-slice aggregates."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import MetricsError
from .ranking import Qrels, Run, top_k_doc_ids
from .trec_metrics import RunMetrics

ALL_SLICE = "all"
HARD_SLICE = "hard"

Slices = Mapping[str, Collection[str]]


@dataclass(frozen=True)
class SliceSummary:
    """Mean of every metric over the evaluated queries of one slice."""

    name: str
    n: int
    means: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready representation (NaN means of empty slices become None)."""
        return {
            "name": self.name,
            "n": self.n,
            "means": {k: (None if np.isnan(v) else v) for k, v in self.means.items()},
        }


def with_all_slice(slices: Slices | None, qids: Collection[str]) -> dict[str, Collection[str]]:
    """``{"all": qids, **slices}``; a user slice may not be called "all"."""
    slices = dict(slices or {})
    if ALL_SLICE in slices:
        raise MetricsError(f'slice name "{ALL_SLICE}" is reserved for all queries')
    return {ALL_SLICE: qids, **slices}


def slice_masks(qids: Sequence[str], slices: Slices) -> np.ndarray:
    """Boolean matrix (queries x slices), columns in ``slices`` order.

    Slice members that were not evaluated (excluded or unknown) are ignored.
    """
    position = {q: i for i, q in enumerate(qids)}
    masks = np.zeros((len(qids), len(slices)), dtype=bool)
    for j, members in enumerate(slices.values()):
        rows = [position[q] for q in members if q in position]
        masks[rows, j] = True
    return masks


def aggregate_slices(
    metrics: RunMetrics, slices: Slices | None = None, *, include_all: bool = True
) -> dict[str, SliceSummary]:
    """Per-slice means and sizes of a run's per-query metrics.

    With ``include_all`` the result starts with the slice "all" (every
    evaluated query). An empty slice has n=0 and NaN means.
    """
    named = with_all_slice(slices, metrics.qids) if include_all else dict(slices or {})
    masks = slice_masks(metrics.qids, named)
    summaries = {}
    for j, name in enumerate(named):
        mask = masks[:, j]
        n = int(mask.sum())
        # 1-D means, so that slice "all" equals RunMetrics.means() exactly.
        means = {m: float(v[mask].mean()) if n else float("nan") for m, v in metrics.per_query.items()}
        summaries[name] = SliceSummary(name=name, n=n, means=means)
    return summaries


def hard_subset(
    baseline_run: Run,
    qrels: Qrels,
    *,
    k: int = 10,
    hard_negatives: Mapping[str, Collection[str]] | None = None,
    relevance_threshold: int = 1,
) -> set[str]:
    """Judged queries that are hard for the baseline.

    A query is hard when it has relevant docs (grade >= ``relevance_threshold``)
    and the baseline ranked all of them outside its top ``k``, or when the
    baseline's top ``k`` contains one of the query's audited hard negatives.
    A judged query missing from the baseline run has an empty top k.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise MetricsError(f"k must be a positive integer, got {k!r}")
    hard_negatives = hard_negatives or {}
    hard: set[str] = set()
    for qid, grades in qrels.items():
        if not grades:
            continue  # unjudged queries are not evaluated at all
        scores = baseline_run.get(qid) or {}
        top = set(top_k_doc_ids(scores, k)) if scores else set()
        relevant = {d for d, g in grades.items() if g >= relevance_threshold}
        missed_all = bool(relevant) and not relevant & top
        if missed_all or top & set(hard_negatives.get(qid, ())):
            hard.add(qid)
    return hard

"""Per-query IR metrics computed by pytrec_eval under our pinned semantics.

Nothing trec_eval defines is re-implemented here: we only fix the ranking
(re-scoring tied queries), choose which queries count, and reshape the output
into numpy arrays aligned with a sorted list of query ids. The one derived
number is MRR@k, which equals ``recip_rank`` on the run cut at k: the first
relevant doc is within the cut exactly when ``recip_rank >= 1/k`` (trec_eval
stores ``1.0 / rank``, so the comparison is exact).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pytrec_eval

from .errors import MetricsError
from .ranking import Qrels, Run, tie_free_scores
from .semantics import MetricSemantics


@dataclass(frozen=True, eq=False)  # numpy fields: compare by identity
class RunMetrics:
    """Per-query metrics of one run.

    ``per_query[name]`` is a float64 array aligned with ``qids`` (sorted judged
    query ids). ``excluded_qids`` are run queries without judgments (not
    scored); ``missing_qids`` are judged queries absent from the run (scored 0).
    """

    qids: tuple[str, ...]
    per_query: Mapping[str, np.ndarray]
    semantics: MetricSemantics
    excluded_qids: tuple[str, ...] = ()
    missing_qids: tuple[str, ...] = ()

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Metric names in display order."""
        return tuple(self.per_query)

    @property
    def n_evaluated(self) -> int:
        """Number of queries that count (judged queries)."""
        return len(self.qids)

    @property
    def n_excluded(self) -> int:
        """Number of run queries left out because they have no judgments."""
        return len(self.excluded_qids)

    def means(self) -> dict[str, float]:
        """Mean of each metric over evaluated queries (NaN when there are none)."""
        return {name: float(values.mean()) if len(values) else float("nan") for name, values in self.per_query.items()}

    def matrix(self, metric_names: Iterable[str] | None = None) -> np.ndarray:
        """Queries x metrics float64 matrix (columns in ``metric_names`` order)."""
        names = self.metric_names if metric_names is None else tuple(metric_names)
        if not names:
            return np.zeros((len(self.qids), 0))
        return np.column_stack([self.per_query[name] for name in names])

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {q: i for i, q in enumerate(self.qids)}

    def for_query(self, qid: str) -> dict[str, float]:
        """All metrics of one evaluated query."""
        try:
            i = self._positions[qid]
        except KeyError:
            raise MetricsError(f"query {qid!r} was not evaluated") from None
        return {name: float(v[i]) for name, v in self.per_query.items()}

    def to_dict(self, *, include_per_query: bool = True) -> dict[str, Any]:
        """JSON-ready representation; :meth:`from_dict` reverses it."""
        data: dict[str, Any] = {
            "semantics": self.semantics.to_dict(),
            "n_evaluated": self.n_evaluated,
            "n_excluded": self.n_excluded,
            "excluded_qids": list(self.excluded_qids),
            "missing_qids": list(self.missing_qids),
            "means": self.means(),
        }
        if include_per_query:
            data["qids"] = list(self.qids)
            data["per_query"] = {k: v.tolist() for k, v in self.per_query.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunMetrics:
        """Rebuild from :meth:`to_dict` output (which must include per-query data)."""
        if "per_query" not in data:
            raise MetricsError("per-query metrics are needed to rebuild RunMetrics")
        return cls(
            qids=tuple(data["qids"]),
            per_query={k: np.asarray(v, dtype=np.float64) for k, v in data["per_query"].items()},
            semantics=MetricSemantics.from_dict(data["semantics"]),
            excluded_qids=tuple(data.get("excluded_qids", ())),
            missing_qids=tuple(data.get("missing_qids", ())),
        )


def _trec_measures(semantics: MetricSemantics) -> set[str]:
    def cut(name: str, ks: tuple[int, ...]) -> list[str]:
        return [f"{name}.{','.join(map(str, ks))}"] if ks else []

    return {
        *cut("recall", semantics.recall_ks),
        *cut("P", semantics.precision_ks),
        *cut("ndcg_cut", semantics.ndcg_ks),
        "recip_rank",
        "map",
    }


def _judged_qrels(qrels: Qrels) -> dict[str, dict[str, int]]:
    """Queries with at least one judgment, grades checked to be integers."""
    judged: dict[str, dict[str, int]] = {}
    for qid, grades in qrels.items():
        if not isinstance(qid, str):
            raise MetricsError(f"query ids must be strings, got {qid!r}")
        if not grades:
            continue
        clean: dict[str, int] = {}
        for doc, grade in grades.items():
            if not isinstance(doc, str):
                raise MetricsError(f"doc ids must be strings, got {doc!r}")
            if isinstance(grade, bool) or not isinstance(grade, (int, np.integer)):
                raise MetricsError(f"grades must be integers, got {grade!r}")
            clean[doc] = int(grade)
        judged[qid] = clean
    return judged


class _Evaluator:
    """One pytrec_eval evaluator, built once and reused for every run."""

    def __init__(self, qrels: Qrels, semantics: MetricSemantics) -> None:
        self.semantics = semantics
        self.judged = _judged_qrels(qrels)
        self.qids = tuple(sorted(self.judged))
        self._trec = pytrec_eval.RelevanceEvaluator(
            self.judged,
            _trec_measures(semantics),
            relevance_level=semantics.relevance_threshold,
        )

    def _evaluate_trec(self, run: dict[str, Mapping[str, float]]) -> dict:
        try:
            return self._trec.evaluate(run)
        except TypeError:
            pass
        # pytrec_eval accepts only str keys and Python floats; numpy scalars
        # are common, so convert once (rare path) before blaming the ids.
        converted = {}
        for qid, scores in run.items():
            if not isinstance(qid, str) or not all(isinstance(d, str) for d in scores):
                raise MetricsError("query ids and doc ids must be strings") from None
            converted[qid] = dict(zip(scores, map(float, scores.values()), strict=True))
        return self._trec.evaluate(converted)

    def evaluate(self, run: Run) -> RunMetrics:
        sem = self.semantics
        judged = self.judged
        excluded = tuple(sorted(q for q in run if q not in judged))
        missing = tuple(q for q in self.qids if q not in run)
        trec_run = {q: tie_free_scores(s) for q, s in run.items() if q in judged}
        results = self._evaluate_trec(trec_run)

        rows = [results.get(q) for q in self.qids]
        n = len(rows)

        def column(key: str) -> np.ndarray:
            return np.fromiter((r[key] if r else 0.0 for r in rows), np.float64, n)

        per_query: dict[str, np.ndarray] = {}
        for k in sem.recall_ks:
            per_query[f"recall@{k}"] = column(f"recall_{k}")
        for k in sem.precision_ks:
            per_query[f"P@{k}"] = column(f"P_{k}")
        rr = column("recip_rank")
        if sem.mrr_cutoff is not None:
            rr = np.where(rr >= 1.0 / sem.mrr_cutoff, rr, 0.0)
        per_query[sem.mrr_name] = rr
        for k in sem.ndcg_ks:
            per_query[f"nDCG@{k}"] = column(f"ndcg_cut_{k}")
        per_query["MAP"] = column("map")
        return RunMetrics(
            qids=self.qids,
            per_query=per_query,
            semantics=sem,
            excluded_qids=excluded,
            missing_qids=missing,
        )


def evaluate_runs(
    runs: Mapping[str, Run],
    qrels: Qrels,
    semantics: MetricSemantics | None = None,
) -> dict[str, RunMetrics]:
    """Evaluate several runs (name -> run) against the same qrels.

    A run maps query id -> {doc id: score}; qrels map query id -> {doc id:
    integer grade}. The pytrec_eval evaluator is built once for all runs.
    """
    evaluator = _Evaluator(qrels, semantics or MetricSemantics())
    return {name: evaluator.evaluate(run) for name, run in runs.items()}


def evaluate_run(run: Run, qrels: Qrels, semantics: MetricSemantics | None = None) -> RunMetrics:
    """Evaluate one run; see :func:`evaluate_runs`."""
    return _Evaluator(qrels, semantics or MetricSemantics()).evaluate(run)

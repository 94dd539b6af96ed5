"""Django-free IR evaluation: metrics, slices, significance tests, TREC files.

Plain Python and numpy in, plain Python and numpy out; nothing here imports
Django or the apps, so it can be used from a notebook. Metric definitions are
pinned by :class:`MetricSemantics` and computed by pytrec_eval.
"""

from __future__ import annotations

from .errors import MetricsError, SemanticsMismatchError
from .ranking import Qrels, Run, ranked_doc_ids, tie_free_scores, top_k_doc_ids
from .report import (
    Comparison,
    ComparisonCell,
    EvaluationReport,
    compare_metrics,
    evaluate_and_compare,
)
from .semantics import MetricSemantics
from .significance import PairedTests, holm_adjust, paired_tests, verdicts
from .slices import (
    ALL_SLICE,
    HARD_SLICE,
    SliceSummary,
    aggregate_slices,
    hard_subset,
    slice_masks,
)
from .trec_files import (
    read_trec_qrels,
    read_trec_run,
    trec_eval_scores,
    trec_run_lines,
    write_trec_qrels,
    write_trec_run,
)
from .trec_metrics import RunMetrics, evaluate_run, evaluate_runs

__all__ = [
    "ALL_SLICE",
    "HARD_SLICE",
    "Comparison",
    "ComparisonCell",
    "EvaluationReport",
    "MetricSemantics",
    "MetricsError",
    "PairedTests",
    "Qrels",
    "Run",
    "RunMetrics",
    "SemanticsMismatchError",
    "SliceSummary",
    "aggregate_slices",
    "compare_metrics",
    "evaluate_and_compare",
    "evaluate_run",
    "evaluate_runs",
    "hard_subset",
    "holm_adjust",
    "paired_tests",
    "ranked_doc_ids",
    "read_trec_qrels",
    "read_trec_run",
    "slice_masks",
    "tie_free_scores",
    "top_k_doc_ids",
    "trec_eval_scores",
    "trec_run_lines",
    "verdicts",
    "write_trec_qrels",
    "write_trec_run",
]

"""The pinned definition of every metric, stored with every result.

Two results can only be compared when their semantics are equal: a different
relevance threshold or cutoff silently changes what a number means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import MetricsError, SemanticsMismatchError

SEMANTICS_VERSION = 1

# The descriptive policies below are what this code implements; they are
# stored so that a future change of policy shows up as a semantics mismatch.
TIE_BREAKING = "score desc, then doc id ascending (string order)"
GAIN = "linear in grade (trec_eval ndcg_cut)"
RECALL_DENOMINATOR = "all relevant judged docs"
EXCLUDED_QUERIES = "queries without any judgments are excluded and counted"
MISSING_QUERIES = "judged queries absent from the run score 0 and count as evaluated"

_POLICIES = {
    "tie_breaking": TIE_BREAKING,
    "gain": GAIN,
    "recall_denominator": RECALL_DENOMINATOR,
    "excluded_queries": EXCLUDED_QUERIES,
    "missing_queries": MISSING_QUERIES,
}


def _cutoff(value: Any, name: str) -> int:
    # bool is an int subclass; True as a cutoff is certainly a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise MetricsError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise MetricsError(f"{name} must be a positive integer, got {value}")
    return value


def _cutoffs(values: Iterable[Any], name: str) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)):
        raise MetricsError(f"{name} must be a sequence of integers, got {values!r}")
    return tuple(sorted({_cutoff(v, f"{name} entry") for v in values}))


@dataclass(frozen=True)
class MetricSemantics:
    """What the metrics mean: ranking, relevance, gain, cutoffs and query policy.

    - Ranking: score descending, ties broken by doc id ascending (string order).
    - Relevant: grade >= ``relevance_threshold`` (recall, P, MRR, MAP).
    - nDCG: trec_eval ``ndcg_cut``, gain linear in the grade (a grade below the
      threshold still contributes its gain, exactly as trec_eval does).
    - Recall@k: relevant docs in the top k / all relevant judged docs.
    - MRR@k: trec_eval ``recip_rank`` on the run cut at k (``mrr_cutoff=None``
      means the uncut run).
    - Queries without judgments are excluded (and counted); judged queries
      absent from the run score 0 on every metric and count as evaluated, so
      that a system cannot improve its mean by failing to answer.
    """

    tie_breaking: str = TIE_BREAKING
    relevance_threshold: int = 1
    gain: str = GAIN
    recall_denominator: str = RECALL_DENOMINATOR
    excluded_queries: str = EXCLUDED_QUERIES
    missing_queries: str = MISSING_QUERIES
    mrr_cutoff: int | None = 10
    recall_ks: tuple[int, ...] = (1, 3, 5, 10, 20, 100)
    precision_ks: tuple[int, ...] = (1, 3, 5, 10, 20, 100)
    ndcg_ks: tuple[int, ...] = (5, 10)
    version: int = SEMANTICS_VERSION

    def __post_init__(self) -> None:
        for name, supported in _POLICIES.items():
            if getattr(self, name) != supported:
                raise MetricsError(f"unsupported {name} {getattr(self, name)!r}; this code implements {supported!r}")
        if self.version != SEMANTICS_VERSION:
            raise MetricsError(
                f"unsupported semantics version {self.version!r}; this code implements version {SEMANTICS_VERSION}"
            )
        _cutoff(self.relevance_threshold, "relevance_threshold")
        if self.mrr_cutoff is not None:
            _cutoff(self.mrr_cutoff, "mrr_cutoff")
        # Normalise cutoffs (sorted, unique) so equal semantics compare equal;
        # object.__setattr__ is the documented way to do this on a frozen class.
        for name in ("recall_ks", "precision_ks", "ndcg_ks"):
            object.__setattr__(self, name, _cutoffs(getattr(self, name), name))

    @property
    def mrr_name(self) -> str:
        """Display name of the reciprocal-rank metric, e.g. ``MRR@10``."""
        return "MRR" if self.mrr_cutoff is None else f"MRR@{self.mrr_cutoff}"

    def metric_names(self) -> tuple[str, ...]:
        """Names of the reported metrics, in display order."""
        return (
            *(f"recall@{k}" for k in self.recall_ks),
            *(f"P@{k}" for k in self.precision_ks),
            self.mrr_name,
            *(f"nDCG@{k}" for k in self.ndcg_ks),
            "MAP",
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation (cutoffs as lists)."""
        data = asdict(self)
        for name in ("recall_ks", "precision_ks", "ndcg_ks"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricSemantics:
        """Inverse of :meth:`to_dict`; unknown keys are an error, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MetricsError(f"unknown semantics fields: {', '.join(unknown)}")
        return cls(**dict(data))

    def differences(self, other: MetricSemantics) -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ, as ``name -> (self value, other value)``."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}

    def require_same(self, other: MetricSemantics) -> None:
        """Raise :class:`SemanticsMismatchError` unless ``other`` is equal."""
        diff = self.differences(other)
        if diff:
            detail = "; ".join(f"{k}: {a!r} vs {b!r}" for k, (a, b) in diff.items())
            raise SemanticsMismatchError(f"cannot compare results computed with different semantics ({detail})")

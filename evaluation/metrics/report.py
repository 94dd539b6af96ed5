"""One call that produces everything the evaluation page shows.

Metrics per config (overall and per slice) and paired comparisons of every
config against a baseline, with confidence intervals, raw and Holm-adjusted
p-values, verdicts and wins/ties/losses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from .errors import MetricsError
from .ranking import Qrels, Run
from .semantics import MetricSemantics
from .significance import PairedTests, TestKind, holm_adjust, paired_tests, verdicts
from .slices import ALL_SLICE, Slices, SliceSummary, aggregate_slices, slice_masks, with_all_slice
from .trec_metrics import RunMetrics, evaluate_runs

HolmScope = Literal["comparison", "all"]


def _num(value: Any) -> float | None:
    """Float for JSON: NaN (an empty slice) becomes None."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class ComparisonCell:
    """Candidate minus baseline for one (metric, slice) cell."""

    metric: str
    slice: str
    n: int
    baseline_mean: float | None
    candidate_mean: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None  # raw p of the chosen test
    p_holm: float | None
    verdict: str
    p_randomization: float | None
    p_bootstrap: float | None
    p_ttest: float | None
    p_wilcoxon: float | None
    wins: int
    ties: int
    losses: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """All cells of one candidate-vs-baseline comparison."""

    baseline: str
    candidate: str
    test: TestKind
    alpha: float
    resamples: int
    seed: int
    ci_level: float
    holm_family_size: int
    cells: tuple[ComparisonCell, ...]

    def cell(self, metric: str, slice_name: str = ALL_SLICE) -> ComparisonCell:
        """The cell of one metric in one slice."""
        for c in self.cells:
            if c.metric == metric and c.slice == slice_name:
                return c
        raise MetricsError(f"no comparison cell for {metric!r} in slice {slice_name!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation."""
        data = asdict(self)
        data["cells"] = [c.to_dict() for c in self.cells]
        return data


@dataclass(frozen=True, eq=False)  # holds RunMetrics (numpy fields)
class EvaluationReport:
    """Metrics of every config, per slice, and comparisons with the baseline."""

    semantics: MetricSemantics
    baseline: str
    metric_names: tuple[str, ...]
    slice_sizes: dict[str, int]
    metrics: dict[str, RunMetrics]
    slice_summaries: dict[str, dict[str, SliceSummary]]
    comparisons: dict[str, Comparison]

    def to_dict(self, *, include_per_query: bool = False) -> dict[str, Any]:
        """JSON-ready representation (per-query arrays only when asked)."""
        return {
            "semantics": self.semantics.to_dict(),
            "baseline": self.baseline,
            "metric_names": list(self.metric_names),
            "slice_sizes": dict(self.slice_sizes),
            "configs": {
                name: {
                    "metrics": m.to_dict(include_per_query=include_per_query),
                    "slices": {s: v.to_dict() for s, v in self.slice_summaries[name].items()},
                }
                for name, m in self.metrics.items()
            },
            "comparisons": {name: c.to_dict() for name, c in self.comparisons.items()},
        }


def _check_options(test: str, alpha: float) -> None:
    if test not in ("randomization", "bootstrap"):
        raise MetricsError(f"unknown test {test!r}: use randomization or bootstrap")
    if not 0.0 < alpha < 1.0:
        raise MetricsError(f"alpha must be between 0 and 1, got {alpha}")


def _check_pair(baseline: RunMetrics, candidate: RunMetrics) -> None:
    baseline.semantics.require_same(candidate.semantics)
    if baseline.qids != candidate.qids:
        raise MetricsError("cannot compare results evaluated on different query sets")
    if baseline.metric_names != candidate.metric_names:
        raise MetricsError("cannot compare results with different metrics")


def _run_tests(
    baseline: RunMetrics,
    candidate: RunMetrics,
    named_slices: Mapping[str, Any],
    *,
    test: TestKind,
    resamples: int,
    seed: int,
    ci_level: float,
    classic_tests: bool,
) -> PairedTests:
    _check_pair(baseline, candidate)
    return paired_tests(
        baseline.matrix(),
        candidate.matrix(baseline.metric_names),
        slice_masks(baseline.qids, named_slices),
        resamples=resamples,
        seed=seed,
        ci_level=ci_level,
        randomization=test == "randomization",
        classic_tests=classic_tests,
    )


def _build_comparison(
    tests: PairedTests,
    p_holm: np.ndarray,
    *,
    baseline: str,
    candidate: str,
    metric_names: tuple[str, ...],
    slice_names: list[str],
    test: TestKind,
    alpha: float,
    family_size: int,
) -> Comparison:
    p_raw = tests.p_values(test)
    verdict = verdicts(tests.diff, p_holm, alpha)

    def opt(values: np.ndarray | None, j: int, i: int) -> float | None:
        return None if values is None else _num(values[j, i])

    cells = tuple(
        ComparisonCell(
            metric=metric,
            slice=slice_name,
            n=int(tests.n[j]),
            baseline_mean=_num(tests.mean_a[j, i]),
            candidate_mean=_num(tests.mean_b[j, i]),
            diff=_num(tests.diff[j, i]),
            ci_low=_num(tests.ci_low[j, i]),
            ci_high=_num(tests.ci_high[j, i]),
            p_value=_num(p_raw[j, i]),
            p_holm=_num(p_holm[j, i]),
            verdict=str(verdict[j, i]),
            p_randomization=opt(tests.p_randomization, j, i),
            p_bootstrap=_num(tests.p_bootstrap[j, i]),
            p_ttest=opt(tests.p_ttest, j, i),
            p_wilcoxon=opt(tests.p_wilcoxon, j, i),
            wins=int(tests.wins[j, i]),
            ties=int(tests.ties[j, i]),
            losses=int(tests.losses[j, i]),
        )
        for i, metric in enumerate(metric_names)
        for j, slice_name in enumerate(slice_names)
    )
    return Comparison(
        baseline=baseline,
        candidate=candidate,
        test=test,
        alpha=alpha,
        resamples=tests.resamples,
        seed=tests.seed,
        ci_level=tests.ci_level,
        holm_family_size=family_size,
        cells=cells,
    )


def compare_metrics(
    baseline: RunMetrics,
    candidate: RunMetrics,
    slices: Slices | None = None,
    *,
    baseline_name: str = "baseline",
    candidate_name: str = "candidate",
    test: TestKind = "randomization",
    resamples: int = 10_000,
    seed: int = 0,
    alpha: float = 0.05,
    ci_level: float = 0.95,
    classic_tests: bool = True,
) -> Comparison:
    """Paired comparison of two evaluated runs over every metric x slice.

    Raises :class:`SemanticsMismatchError` when the semantics differ. Holm's
    family is every non-empty (metric, slice) cell, slice "all" included.
    """
    _check_options(test, alpha)
    named = with_all_slice(slices, baseline.qids)
    tests = _run_tests(
        baseline,
        candidate,
        named,
        test=test,
        resamples=resamples,
        seed=seed,
        ci_level=ci_level,
        classic_tests=classic_tests,
    )
    p_holm = holm_adjust(tests.p_values(test))
    return _build_comparison(
        tests,
        p_holm,
        baseline=baseline_name,
        candidate=candidate_name,
        metric_names=baseline.metric_names,
        slice_names=list(named),
        test=test,
        alpha=alpha,
        family_size=int(np.isfinite(p_holm).sum()),
    )


def evaluate_and_compare(
    runs: Mapping[str, Run],
    qrels: Qrels,
    *,
    slices: Slices | None = None,
    baseline: str | None = None,
    semantics: MetricSemantics | None = None,
    test: TestKind = "randomization",
    resamples: int = 10_000,
    seed: int = 0,
    alpha: float = 0.05,
    ci_level: float = 0.95,
    holm_scope: HolmScope = "comparison",
    classic_tests: bool = True,
) -> EvaluationReport:
    """Evaluate every run (config name -> run) and compare each with the baseline.

    ``slices`` maps slice name -> query ids (the slice "all" is added). The
    baseline defaults to the first config. Holm's family is the metrics x
    slices of one comparison (``holm_scope="comparison"``) or of all
    comparisons together (``"all"``, stricter when many configs are compared).
    The same seed is used for every comparison, so results are reproducible.
    """
    if not runs:
        raise MetricsError("no runs to evaluate")
    baseline = next(iter(runs)) if baseline is None else baseline
    if baseline not in runs:
        raise MetricsError(f"baseline {baseline!r} is not one of the runs")
    _check_options(test, alpha)
    if holm_scope not in ("comparison", "all"):
        raise MetricsError(f"unknown holm_scope {holm_scope!r}: use comparison or all")
    semantics = semantics or MetricSemantics()
    metrics = evaluate_runs(runs, qrels, semantics)
    base = metrics[baseline]
    named = with_all_slice(slices, base.qids)
    summaries = {name: aggregate_slices(m, slices) for name, m in metrics.items()}

    candidates = [name for name in metrics if name != baseline]
    tests = {
        name: _run_tests(
            base,
            metrics[name],
            named,
            test=test,
            resamples=resamples,
            seed=seed,
            ci_level=ci_level,
            classic_tests=classic_tests,
        )
        for name in candidates
    }
    raw = {name: t.p_values(test) for name, t in tests.items()}
    if holm_scope == "all" and candidates:
        pooled = holm_adjust(np.stack([raw[name] for name in candidates]))
        adjusted = dict(zip(candidates, pooled, strict=True))
    else:
        adjusted = {name: holm_adjust(p) for name, p in raw.items()}
    family = {name: int(np.isfinite(p).sum()) for name, p in adjusted.items()}
    if holm_scope == "all":
        family = dict.fromkeys(family, sum(family.values()))

    comparisons = {
        name: _build_comparison(
            tests[name],
            adjusted[name],
            baseline=baseline,
            candidate=name,
            metric_names=base.metric_names,
            slice_names=list(named),
            test=test,
            alpha=alpha,
            family_size=family[name],
        )
        for name in candidates
    }
    return EvaluationReport(
        semantics=semantics,
        baseline=baseline,
        metric_names=base.metric_names,
        slice_sizes={name: s.n for name, s in summaries[baseline].items()},
        metrics=metrics,
        slice_summaries=summaries,
        comparisons=comparisons,
    )

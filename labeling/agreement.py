"""Agreement statistics and aggregation rules on plain data (no Django): rater x item grade tables in, figures out.

Computed with maintained libraries: Cohen's weighted kappa (scikit-learn), Fleiss' kappa (statsmodels), Krippendorff's
alpha (krippendorff). Confidence intervals are percentile bootstraps over items (seeded, so pages are stable).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 300

Ratings = Mapping[str, Mapping[object, int]]  # rater -> item -> grade


@dataclass(frozen=True)
class Figure:
    """One agreement figure with its 95 % bootstrap interval and the number of items behind it."""

    value: float | None
    low: float | None
    high: float | None
    items: int

    @property
    def defined(self) -> bool:
        return self.value is not None and not math.isnan(self.value)


def aggregate(grades: Sequence[int], rule: str) -> int:
    """The campaign's aggregation rule over one pair's grades (can't-judge already removed).

    majority: the most frequent grade, ties to the lower one (judges tend to over-rate);
    mean: the mean rounded half up; top3_min: the minimum of the three highest grades (so the grade where the top
    three agree, else the lowest of them).
    """
    if not grades:
        raise ValueError("no grades to aggregate")
    if rule == "majority":
        counts = Counter(grades)
        top = max(counts.values())
        return min(g for g, n in counts.items() if n == top)
    if rule == "mean":
        return math.floor(sum(grades) / len(grades) + 0.5)
    if rule == "top3_min":
        return min(sorted(grades, reverse=True)[:3])
    raise ValueError(f"unknown aggregation rule {rule!r}")


def cohen_kappa(a: Sequence[int], b: Sequence[int], *, labels: Sequence[int], weights: str | None = "linear") -> float:
    from sklearn.metrics import cohen_kappa_score

    if len(a) < 2:
        return float("nan")
    if len(set(a)) == 1 and len(set(b)) == 1:
        return 1.0 if a[0] == b[0] else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(cohen_kappa_score(list(a), list(b), labels=list(labels), weights=weights))


def fleiss_kappa(rows: Sequence[Sequence[int]], *, labels: Sequence[int]) -> float:
    """Fleiss' kappa of items each rated by the same number of raters (rows: the grades of one item)."""
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    if len(rows) < 2:
        return float("nan")
    index = {g: i for i, g in enumerate(labels)}
    table = np.zeros((len(rows), len(labels)), dtype=float)
    for r, grades in enumerate(rows):
        for g in grades:
            table[r, index[g]] += 1
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(sm_fleiss(table, method="fleiss"))


def krippendorff_alpha(matrix: np.ndarray, *, level: str = "ordinal", labels: Sequence[int] | None = None) -> float:
    """Krippendorff's alpha of a raters x units matrix with NaN for missing grades."""
    import krippendorff

    usable = np.sum(~np.isnan(matrix), axis=0) >= 2
    if usable.sum() < 1 or len(np.unique(matrix[:, usable][~np.isnan(matrix[:, usable])])) < 2:
        return float("nan")
    domain = np.asarray(labels, dtype=float) if labels is not None else None
    return float(
        krippendorff.alpha(reliability_data=matrix[:, usable], level_of_measurement=level, value_domain=domain)
    )


def _bootstrap(stat, n: int, *, resamples: int, seed: int) -> tuple[float | None, float | None]:  # type: ignore[no-untyped-def]
    if n < 2 or resamples <= 0:
        return None, None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        v = stat(rng.integers(0, n, size=n))
        if v is not None and not math.isnan(v):
            values.append(v)
    if len(values) < max(10, resamples // 10):
        return None, None
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def _figure(stat, n: int, *, resamples: int, seed: int) -> Figure:  # type: ignore[no-untyped-def]
    value = stat(np.arange(n)) if n else float("nan")
    if value is None or math.isnan(value):
        return Figure(None, None, None, n)
    low, high = _bootstrap(stat, n, resamples=resamples, seed=seed)
    return Figure(value, low, high, n)


def pair_kappa(
    a: Mapping[object, int],
    b: Mapping[object, int],
    *,
    labels: Sequence[int],
    weights: str | None = "linear",
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Figure:
    """Cohen's (weighted) kappa over the items both raters graded."""
    common = sorted(set(a) & set(b), key=str)
    xa = [a[i] for i in common]
    xb = [b[i] for i in common]

    def stat(idx: np.ndarray) -> float:
        return cohen_kappa([xa[i] for i in idx], [xb[i] for i in idx], labels=labels, weights=weights)

    return _figure(stat, len(common), resamples=resamples, seed=seed)


def fleiss_figure(
    ratings: Ratings, *, labels: Sequence[int], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> Figure:
    """Fleiss' kappa over items rated by the most common number (>= 2) of raters (the statistic needs it equal)."""
    per_item: dict[object, list[int]] = {}
    for grades in ratings.values():
        for item, g in grades.items():
            per_item.setdefault(item, []).append(g)
    sizes = Counter(len(v) for v in per_item.values() if len(v) >= 2)
    if not sizes:
        return Figure(None, None, None, 0)
    size = max(sizes, key=lambda s: (sizes[s], s))
    rows = [v for _, v in sorted(per_item.items(), key=lambda kv: str(kv[0])) if len(v) == size]

    def stat(idx: np.ndarray) -> float:
        return fleiss_kappa([rows[i] for i in idx], labels=labels)

    return _figure(stat, len(rows), resamples=resamples, seed=seed)


def alpha_figure(
    ratings: Ratings,
    *,
    labels: Sequence[int],
    level: str = "ordinal",
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Figure:
    """Krippendorff's alpha over every item graded by at least two raters (missing grades allowed)."""
    raters = sorted(ratings)
    items = sorted({i for g in ratings.values() for i in g if sum(i in ratings[r] for r in raters) >= 2}, key=str)
    matrix = np.full((len(raters), len(items)), np.nan)
    for r, rater in enumerate(raters):
        for c, item in enumerate(items):
            if item in ratings[rater]:
                matrix[r, c] = ratings[rater][item]

    def stat(idx: np.ndarray) -> float:
        return krippendorff_alpha(matrix[:, idx], level=level, labels=labels)

    return _figure(stat, len(items), resamples=resamples, seed=seed)

"""Agreement statistics against published worked examples and hand-computed values; aggregation rules."""

from __future__ import annotations

import numpy as np
import pytest

from labeling import agreement

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders x 12 units, values 1-5, gaps missing.
KRIPPENDORFF = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
)
# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories -> kappa = 0.210.
FLEISS_COUNTS = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_krippendorff_published_example() -> None:
    assert agreement.krippendorff_alpha(KRIPPENDORFF, level="nominal") == pytest.approx(0.743, abs=5e-4)
    assert agreement.krippendorff_alpha(KRIPPENDORFF, level="ordinal") == pytest.approx(0.815, abs=5e-4)
    assert agreement.krippendorff_alpha(KRIPPENDORFF, level="interval") == pytest.approx(0.849, abs=5e-4)


def test_alpha_figure_from_ratings_matches_the_matrix() -> None:
    ratings = {f"c{r}": {u: int(v) for u, v in enumerate(row) if not np.isnan(v)} for r, row in enumerate(KRIPPENDORFF)}
    fig = agreement.alpha_figure(ratings, labels=[1, 2, 3, 4, 5], level="ordinal", resamples=200)
    assert fig.value == pytest.approx(0.815, abs=5e-4)
    assert fig.items == 11  # unit 12 has a single value and cannot be paired
    assert fig.low is not None and fig.low <= fig.value <= fig.high


def test_fleiss_wikipedia_example() -> None:
    rows = [[c for c, n in enumerate(counts) for _ in range(n)] for counts in FLEISS_COUNTS]
    assert agreement.fleiss_kappa(rows, labels=[0, 1, 2, 3, 4]) == pytest.approx(0.210, abs=5e-4)
    ratings: dict[str, dict[int, int]] = {f"r{k}": {} for k in range(14)}
    for item, grades in enumerate(rows):
        for k, g in enumerate(grades):
            ratings[f"r{k}"][item] = g
    fig = agreement.fleiss_figure(ratings, labels=[0, 1, 2, 3, 4], resamples=100)
    assert fig.value == pytest.approx(0.210, abs=5e-4) and fig.items == 10


def test_weighted_cohen_hand_computed() -> None:
    # Observed linear disagreement 1/6, expected 1/2 -> kappa = 1 - (1/6)/(1/2) = 2/3 (worked by hand).
    assert agreement.cohen_kappa([0, 1, 2], [0, 2, 2], labels=[0, 1, 2]) == pytest.approx(2 / 3)
    fig = agreement.pair_kappa({1: 0, 2: 1, 3: 2, 4: 1}, {1: 0, 2: 2, 3: 2}, labels=[0, 1, 2], resamples=50)
    assert fig.items == 3 and fig.value == pytest.approx(2 / 3)
    assert agreement.pair_kappa({1: 0}, {2: 1}, labels=[0, 1]).items == 0


@pytest.mark.parametrize(
    ("grades", "rule", "expected"),
    [
        ([2, 2, 1], "majority", 2),
        ([3, 1], "majority", 1),  # tie -> the lower grade
        ([0, 1, 3], "mean", 1),  # 1.33
        ([1, 2], "mean", 2),  # 1.5 rounds half up
        ([3, 3, 3, 0], "top3_min", 3),  # the top three agree
        ([3, 3, 2, 1, 0], "top3_min", 2),  # they disagree: their minimum
        ([2], "top3_min", 2),
    ],
)
def test_aggregation_rules(grades: list[int], rule: str, expected: int) -> None:
    assert agreement.aggregate(grades, rule) == expected

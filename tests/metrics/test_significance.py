from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import evaluation.metrics.significance as significance
from evaluation.metrics import MetricsError, holm_adjust, paired_tests, verdicts


def scipy_sign_flip_p(d: np.ndarray) -> float:
    """scipy's paired permutation test of the mean difference (exact for small n)."""
    result = stats.permutation_test(
        (d, np.zeros_like(d)),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        n_resamples=100_000,
    )
    return float(result.pvalue)


@pytest.mark.parametrize(
    "d",
    [
        # continuous differences
        np.array([0.12, -0.05, 0.30, 0.08, -0.02, 0.15, 0.22, -0.11, 0.05, 0.09, 0.01, -0.04]),
        # discrete differences with many exact ties of |T*| and |T|
        np.array([1, 0, 1, -1, 0, 1, 0, 0, 1, -1, 1, 0, 1], dtype=float),
        np.array([0.2, -0.2, 0.4, 0.0, 0.2, -0.2, 0.2, 0.4, 0.0, -0.4, 0.2]),
    ],
)
def test_randomization_p_matches_scipy_exact(d):
    expected = scipy_sign_flip_p(d)  # 2**n < n_resamples: scipy enumerates all flips
    resamples = 40_000
    got = paired_tests(np.zeros_like(d), d, resamples=resamples, classic_tests=False)
    p = float(got.p_randomization[0, 0])
    standard_error = np.sqrt(expected * (1 - expected) / resamples)
    assert abs(p - expected) < 4 * standard_error + 1 / resamples


def test_slices_are_tested_on_their_own_queries():
    rng = np.random.default_rng(7)
    a = rng.random((40, 2))
    b = a + rng.normal(0.05, 0.2, size=(40, 2))
    masks = np.zeros((40, 2), dtype=bool)
    masks[:, 0] = True
    masks[:15, 1] = True
    together = paired_tests(a, b, masks, resamples=2000, seed=3)
    alone = paired_tests(a[:15], b[:15], resamples=2000, seed=3)
    np.testing.assert_allclose(together.diff[1], alone.diff[0])
    np.testing.assert_allclose(together.mean_a[1], a[:15].mean(axis=0))
    np.testing.assert_allclose(together.p_ttest[1], alone.p_ttest[0])
    assert together.n.tolist() == [40, 15]
    # Same test, different random draws: agreement within Monte-Carlo error.
    np.testing.assert_allclose(together.p_randomization[1], alone.p_randomization[0], atol=0.05)


def test_bootstrap_ci_close_to_scipy_percentile_bootstrap():
    rng = np.random.default_rng(11)
    d = rng.normal(0.03, 0.2, size=300)
    ours = paired_tests(np.zeros_like(d), d, resamples=10_000, seed=1, classic_tests=False)
    ref = stats.bootstrap((d,), np.mean, n_resamples=10_000, method="percentile", random_state=1)
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert ours.ci_low[0, 0] == pytest.approx(ref.confidence_interval.low, abs=0.1 * width)
    assert ours.ci_high[0, 0] == pytest.approx(ref.confidence_interval.high, abs=0.1 * width)
    assert ours.ci_low[0, 0] < d.mean() < ours.ci_high[0, 0]
    # The bootstrap test agrees with the randomization test on clear data.
    assert ours.p_bootstrap[0, 0] < 0.05 and ours.p_randomization[0, 0] < 0.05


def test_reproducible_with_a_seed_and_independent_of_block_size(monkeypatch):
    rng = np.random.default_rng(5)
    a, b = rng.random((300, 3)), rng.random((300, 3))
    masks = rng.random((300, 2)) < 0.5
    first = paired_tests(a, b, masks, resamples=999, seed=42)
    monkeypatch.setattr(significance, "_MAX_BLOCK_ROWS", 7)
    second = paired_tests(a, b, masks, resamples=999, seed=42)
    # Exact: the randomization p-values are counts compared with a tolerance far
    # above float64 rounding, and the draws do not depend on the block size.
    np.testing.assert_array_equal(first.p_randomization, second.p_randomization)
    # To tolerance: bootstrap means are BLAS matrix products whose accumulation
    # order depends on the CPU's kernel and on the block size, so CI bounds and
    # bootstrap p-values may differ in the last float64 bits (1e-9 is ~1e7 ulps
    # of these O(0.1) numbers, yet far below any difference a changed draw
    # would make).
    for field in ("p_bootstrap", "ci_low", "ci_high"):
        np.testing.assert_allclose(getattr(first, field), getattr(second, field), rtol=0, atol=1e-9)
    other = paired_tests(a, b, masks, resamples=999, seed=43)
    assert np.abs(first.ci_low - other.ci_low).min() > 1e-6  # a different seed draws different resamples
    assert first.resamples == 999 and first.seed == 42


def test_bootstrap_weights_do_not_depend_on_the_block_size(monkeypatch):
    """The random draws are exact: the same weight matrix whatever the block size."""

    class RecordingTable:
        def __init__(self, table: np.ndarray) -> None:
            self.table, self.blocks = table, []

        def __getitem__(self, index):
            weights = self.table[index]
            self.blocks.append(weights)
            return weights

    a, b = np.random.default_rng(1).random((2, 51, 2))
    drawn = []
    for block_rows in (256, 7):
        recorder = RecordingTable(significance._POISSON)
        monkeypatch.setattr(significance, "_POISSON", recorder)
        monkeypatch.setattr(significance, "_MAX_BLOCK_ROWS", block_rows)
        paired_tests(a, b, resamples=300, seed=9, randomization=False, classic_tests=False)
        drawn.append(np.concatenate(recorder.blocks))
        monkeypatch.setattr(significance, "_POISSON", recorder.table)
    assert len(drawn[1]) == 300 and drawn[1].shape == drawn[0].shape
    np.testing.assert_array_equal(drawn[0], drawn[1])


def test_identical_systems_and_empty_slices():
    a = np.random.default_rng(0).random((20, 2))
    masks = np.zeros((20, 2), dtype=bool)
    masks[:, 0] = True
    out = paired_tests(a, a.copy(), masks, resamples=500)
    assert out.p_randomization[0].tolist() == [1.0, 1.0]
    assert out.p_bootstrap[0].tolist() == [1.0, 1.0]
    assert out.ties[0].tolist() == [20, 20] and out.wins[0].tolist() == [0, 0]
    assert np.isnan(out.p_randomization[1]).all() and np.isnan(out.ci_low[1]).all()
    assert out.n.tolist() == [20, 0]


def test_wins_ties_losses():
    a = np.array([0.5, 0.5, 0.5, 0.5])
    b = np.array([0.7, 0.5, 0.2, 0.6])
    out = paired_tests(a, b, resamples=100)
    assert (out.wins[0, 0], out.ties[0, 0], out.losses[0, 0]) == (2, 1, 1)


def test_input_validation():
    with pytest.raises(MetricsError, match="same shape"):
        paired_tests(np.zeros(3), np.zeros(4))
    with pytest.raises(MetricsError, match="NaN"):
        paired_tests(np.zeros(3), np.array([0.0, np.nan, 1.0]))
    with pytest.raises(MetricsError, match="resamples"):
        paired_tests(np.zeros(3), np.zeros(3), resamples=0)
    with pytest.raises(MetricsError, match="masks"):
        paired_tests(np.zeros(3), np.zeros(3), np.ones((4, 1), dtype=bool))
    with pytest.raises(MetricsError, match="not run"):
        paired_tests(np.zeros(3), np.zeros(3), randomization=False).p_values("randomization")


def reference_holm(p: list[float]) -> list[float]:
    """Textbook Holm: step down through sorted p-values, enforcing monotonicity."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def test_holm_known_example():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> cummax
    np.testing.assert_allclose(holm_adjust(p), [0.03, 0.06, 0.06, 0.02])
    grid = np.array([[0.01, np.nan], [0.04, 0.5]])
    np.testing.assert_allclose(holm_adjust(grid), [[0.03, np.nan], [0.08, 0.5]])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_holm_matches_reference(p):
    np.testing.assert_allclose(holm_adjust(np.array(p)), reference_holm(p), rtol=0, atol=1e-15)


def test_verdicts():
    diff = np.array([0.1, -0.1, 0.1, 0.0, 0.2])
    p = np.array([0.01, 0.05, 0.051, 0.01, np.nan])
    assert verdicts(diff, p).tolist() == ["better", "worse", "not significant", "not significant", "not significant"]
    assert verdicts(diff, p, alpha=0.1).tolist()[2] == "better"
    with pytest.raises(MetricsError):
        verdicts(diff, p, alpha=0)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0]), min_size=2, max_size=9),
    st.integers(0, 10_000),
)
def test_randomization_p_is_valid(d, seed):
    """A p-value never falls below its Monte-Carlo floor nor exceeds 1."""
    d = np.array(d)
    p = paired_tests(np.zeros_like(d), d, resamples=200, seed=seed, classic_tests=False).p_randomization[0, 0]
    assert 1 / 201 <= p <= 1
    if not d.any():
        assert p == 1

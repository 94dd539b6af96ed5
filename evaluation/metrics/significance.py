"""Paired significance tests over queries, for every (slice, metric) cell at once.

For system B against baseline A with per-query differences ``d = B - A``:

- Randomization (sign-flip) test: under the null each ``d_i`` is equally
  likely to have either sign. Every resample flips signs independently per
  query; the two-sided p-value is ``(1 + #{|T*| >= |T|}) / (1 + R)`` with
  ``T`` the mean difference in the slice.
- Bootstrap: Poisson(1) weights per (resample, query) resample every slice at
  once (``mean* = W @ (d * mask) / W @ mask``), which gives the percentile
  confidence interval and a shift-null test ``#{|mean* - T| >= |T|}``.

One random matrix (resamples x queries) serves all metrics and slices, so the
work is a few matrix products, all in float64. Resamples are processed in
blocks to bound memory (about 64 MiB of random weights at a time, plus the
float64 bootstrap means, resamples x cells).

Reproducibility, precisely:

- The random draws depend only on the seed: neither the block size nor the
  CPU changes them (they are integers from numpy's PCG64 stream).
- The randomization p-values are counts of ``|T*| >= |T|``. The sign-flip
  statistics are float64 products whose last bits can vary with the BLAS
  kernel and block size, but the comparison uses a threshold 1e-9 (relative)
  below ``|T|``: exact ties (frequent for discrete metrics, e.g. P@k on a
  small slice, and they must be counted) are ten million times farther from it
  than that rounding. A count can change only if a statistic lands within
  ~1e-16 (relative) of the threshold itself, so for a given seed the p-values
  are the same on every CPU and block size, and tests compare them exactly.
- The bootstrap figures (CI bounds, bootstrap p-values) are reproducible only
  to floating-point tolerance. Their sums are matrix products, and how BLAS
  accumulates them depends on the CPU's kernel and on the block size, so the
  means differ in the last bits (about 1e-16 relative in float64; float32 made
  that 1e-8, visible in the 7th digit of a CI bound). A bootstrap p-value is a
  count that could only change if a resampled mean fell within that rounding
  of the test's threshold, which the threshold's relative tolerance makes
  vanishingly unlikely; CI bounds agree to a few float64 ulps.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import MetricsError

TestKind = Literal["randomization", "bootstrap"]
BETTER = "better"
WORSE = "worse"
NOT_SIGNIFICANT = "not significant"

# Differences smaller than this are ties (metrics are ratios of small ints,
# so genuine differences are far larger than float noise).
TIE_TOLERANCE = 1e-12
_BLOCK_BYTES = 64 * 2**20
_MAX_BLOCK_ROWS = 256  # small blocks keep the random matrices cache-friendly


def _poisson_table(bits: int = 16) -> np.ndarray:
    """Poisson(1) quantile of each ``bits``-bit integer (inverse-CDF sampling).

    Probabilities are quantised to 2**-16, far below bootstrap noise.
    """
    size = 1 << bits
    cdf, term, k = [], math.exp(-1.0), 0
    total = 0.0
    while total < 1.0 - 0.5 / size:
        total += term
        cdf.append(total)
        k += 1
        term /= k
    u = (np.arange(size) + 0.5) / size
    return np.searchsorted(np.asarray(cdf), u).astype(np.float64)


_POISSON = _poisson_table()


@dataclass(frozen=True, eq=False)  # numpy fields: compare by identity
class PairedTests:
    """Paired comparison B - A; every array is shaped (slices, metrics).

    ``p_randomization`` is None when the sign-flip test was not run;
    ``p_ttest``/``p_wilcoxon`` (scipy, informational) are None when skipped.
    Cells with n=0 have NaN statistics.
    """

    n: np.ndarray
    mean_a: np.ndarray
    mean_b: np.ndarray
    diff: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_randomization: np.ndarray | None
    p_bootstrap: np.ndarray
    p_ttest: np.ndarray | None
    p_wilcoxon: np.ndarray | None
    wins: np.ndarray
    ties: np.ndarray
    losses: np.ndarray
    resamples: int
    seed: int
    ci_level: float

    def p_values(self, test: TestKind) -> np.ndarray:
        """Raw p-values of the chosen test."""
        if test == "bootstrap":
            return self.p_bootstrap
        if test == "randomization":
            if self.p_randomization is None:
                raise MetricsError("the randomization test was not run")
            return self.p_randomization
        raise MetricsError(f"unknown test {test!r}: use randomization or bootstrap")


def _as_matrix(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise MetricsError(f"{name} must be a vector or a queries x metrics matrix")
    if not np.isfinite(arr).all():
        raise MetricsError(f"{name} contains NaN or infinite values")
    return arr


def _block_rows(n_queries: int, bytes_per_value: int) -> int:
    return int(max(1, min(_MAX_BLOCK_ROWS, _BLOCK_BYTES // max(1, n_queries * bytes_per_value))))


def _sign_flip_counts(x: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How many sign-flip resamples reach ``|T*| >= |T|``, per column of ``x``.

    ``x`` holds per-query contributions to each column's mean (d / n inside
    the slice, 0 outside), so ``T = x.sum(0)`` and a flip vector ``s`` gives
    ``T* = s @ x = 2 * (b @ x) - T`` with ``b`` the 0/1 bits of ``s``.
    """
    q = x.shape[0]
    observed = x.sum(axis=0)
    # Relative tolerance far above float64 rounding, far below the spacing of
    # achievable statistics: exact ties count as "at least as extreme".
    threshold = np.abs(observed) - 1e-9 * np.abs(x).sum(axis=0)
    words = (q + 31) // 32
    counts = np.zeros(x.shape[1], dtype=np.int64)
    rows = _block_rows(q, 8)
    for start in range(0, resamples, rows):
        r = min(rows, resamples - start)
        raw = rng.integers(0, 2**32, size=(r, words), dtype=np.uint32)
        bits = np.unpackbits(raw.view(np.uint8), axis=1, count=q)
        flipped = 2.0 * (bits.astype(np.float64) @ x) - observed
        counts += (np.abs(flipped) >= threshold).sum(axis=0)
    return counts


def _poisson_bootstrap_means(
    d_masked: np.ndarray,
    masks: np.ndarray,
    column_slice: np.ndarray,
    resamples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Bootstrap means (resamples x columns); NaN where a slice drew no query."""
    q, c = d_masked.shape
    # float64 throughout: in float32 the BLAS-dependent accumulation order
    # moved CI bounds in the 7th digit; in float64 it is ~1e-16 relative.
    rhs = np.concatenate([d_masked, masks], axis=1).astype(np.float64)
    words = (q + 1) // 2  # two 16-bit draws per 32-bit word
    out = np.empty((resamples, c), dtype=np.float64)
    rows = _block_rows(q, 8)
    for start in range(0, resamples, rows):
        r = min(rows, resamples - start)
        raw = rng.integers(0, 2**32, size=(r, words), dtype=np.uint32)
        weights = _POISSON[raw.view(np.uint16)[:, :q]]
        sums = weights @ rhs
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(sums[:, :c], sums[:, c:][:, column_slice], out=out[start : start + r])
    return out


def _classic_tests(d: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paired t-test and Wilcoxon signed-rank p-values (scipy), NaN if undefined."""
    from scipy import stats  # imported lazily: scipy.stats is slow to import

    s, m = masks.shape[1], d.shape[1]
    p_t = np.full((s, m), np.nan)
    p_w = np.full((s, m), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j in range(s):
            ds = d[masks[:, j]]
            if len(ds) < 2:
                continue
            p_t[j] = stats.ttest_1samp(ds, 0.0, axis=0).pvalue
            nonzero = (np.abs(ds) > TIE_TOLERANCE).any(axis=0)
            for i in np.flatnonzero(nonzero):
                p_w[j, i] = stats.wilcoxon(ds[:, i], zero_method="wilcox").pvalue
    return p_t, p_w


def paired_tests(
    a: np.ndarray,
    b: np.ndarray,
    masks: np.ndarray | None = None,
    *,
    resamples: int = 10_000,
    seed: int = 0,
    ci_level: float = 0.95,
    randomization: bool = True,
    classic_tests: bool = True,
) -> PairedTests:
    """Compare B with baseline A, paired over queries, for every slice x metric.

    ``a`` and ``b``: per-query metrics, shape (queries,) or (queries, metrics),
    rows aligned. ``masks``: boolean (queries, slices); default one slice of
    all queries. The same seed gives the same random draws and the same
    randomization p-values on any CPU; bootstrap CIs and p-values agree to
    floating-point tolerance (see the module docstring).
    """
    a = _as_matrix(a, "a")
    b = _as_matrix(b, "b")
    if a.shape != b.shape:
        raise MetricsError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    q, m = a.shape
    masks = np.ones((q, 1), dtype=bool) if masks is None else np.asarray(masks, dtype=bool)
    if masks.ndim == 1:
        masks = masks[:, None]
    if masks.ndim != 2 or masks.shape[0] != q:
        raise MetricsError(f"masks must be shaped (queries, slices) with {q} rows")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise MetricsError(f"resamples must be a positive integer, got {resamples!r}")
    if not 0.0 < ci_level < 1.0:
        raise MetricsError(f"ci_level must be between 0 and 1, got {ci_level}")
    s = masks.shape[1]

    d = b - a
    n = masks.sum(axis=0)
    n_safe = np.maximum(n, 1).astype(np.float64)
    maskf = masks.astype(np.float64)
    empty = np.broadcast_to((n == 0)[:, None], (s, m))

    def per_slice_mean(values: np.ndarray) -> np.ndarray:
        # Column-wise 1-D means: the same numbers the slice summaries show.
        out = np.full((s, m), np.nan)
        for j in np.flatnonzero(n):
            rows = values[masks[:, j]]
            out[j] = [rows[:, i].mean() for i in range(m)]
        return out

    def per_slice_count(flags: np.ndarray) -> np.ndarray:
        return (masks.T.astype(np.int64) @ flags.astype(np.int64)).astype(np.int64)

    # Columns are (slice, metric) pairs, slice-major, matching reshape(s, m).
    d_masked = (d[:, None, :] * masks[:, :, None]).reshape(q, s * m)
    column_slice = np.repeat(np.arange(s), m)
    seq_sign, seq_boot = np.random.SeedSequence(seed).spawn(2)

    p_rand = None
    if randomization:
        counts = _sign_flip_counts(d_masked / n_safe[column_slice], resamples, np.random.default_rng(seq_sign))
        p_rand = ((1 + counts) / (1 + resamples)).reshape(s, m)
        p_rand[empty] = np.nan

    diff = per_slice_mean(d)
    boot = _poisson_bootstrap_means(d_masked, maskf, column_slice, resamples, np.random.default_rng(seq_boot))
    valid = ~np.isnan(boot)
    observed = diff.reshape(-1)
    with np.errstate(invalid="ignore"):
        extreme = np.abs(boot - observed) >= np.abs(observed) * (1 - 1e-6)
    p_boot = ((1 + extreme.sum(axis=0)) / (1 + valid.sum(axis=0))).reshape(s, m)
    p_boot[empty] = np.nan
    tail = (1.0 - ci_level) / 2
    ci = np.full((2, s * m), np.nan)
    for j in np.flatnonzero(valid.any(axis=0)):
        ci[:, j] = np.quantile(boot[valid[:, j], j], [tail, 1 - tail])

    p_t = p_w = None
    if classic_tests:
        p_t, p_w = _classic_tests(d, masks)

    return PairedTests(
        n=n.astype(np.int64),
        mean_a=per_slice_mean(a),
        mean_b=per_slice_mean(b),
        diff=diff,
        ci_low=ci[0].reshape(s, m),
        ci_high=ci[1].reshape(s, m),
        p_randomization=p_rand,
        p_bootstrap=p_boot,
        p_ttest=p_t,
        p_wilcoxon=p_w,
        wins=per_slice_count(d > TIE_TOLERANCE),
        ties=per_slice_count(np.abs(d) <= TIE_TOLERANCE),
        losses=per_slice_count(d < -TIE_TOLERANCE),
        resamples=resamples,
        seed=seed,
        ci_level=ci_level,
    )


def holm_adjust(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values over all non-NaN entries (any shape).

    The family is every finite entry; NaN entries (empty cells) stay NaN and do
    not count towards the family size.
    """
    p = np.asarray(p_values, dtype=np.float64)
    flat = p.ravel()
    out = np.full(flat.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(flat))
    family = len(valid)
    if family:
        order = valid[np.argsort(flat[valid], kind="stable")]
        scaled = (family - np.arange(family)) * flat[order]
        out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out.reshape(p.shape)


def verdicts(diff: np.ndarray, p_adjusted: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """ "better" / "worse" / "not significant" per cell (adjusted p <= alpha)."""
    if not 0.0 < alpha < 1.0:
        raise MetricsError(f"alpha must be between 0 and 1, got {alpha}")
    diff = np.asarray(diff, dtype=np.float64)
    p = np.asarray(p_adjusted, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        significant = p <= alpha
    out = np.full(diff.shape, NOT_SIGNIFICANT, dtype=object)
    out[significant & (diff > 0)] = BETTER
    out[significant & (diff < 0)] = WORSE
    return out

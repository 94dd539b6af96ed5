"""Data for the evaluation page's charts, passed to the browser with ``json_script`` (never inlined into JS).

- recall@k curve per configuration;
- per-slice means with the 95 % confidence interval of the mean (normal approximation, clipped to [0, 1] since
  every metric here lies in it);
- histogram of per-query differences candidate - baseline of the headline metric, bins centred on 0 so that ties
  fall in the middle bin rather than counting as gains;
- histogram of each configuration's top-1 document score (drift: a shifted distribution means the scores moved).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evaluation.metrics import ALL_SLICE, RunMetrics, slice_masks
from evaluation.models import EvalConfig, EvalRun

Z_95 = 1.959963984540054
DIFF_BIN_WIDTH = 0.1
TOP1_BINS = 20


def _mean_ci(values: np.ndarray) -> dict[str, float | int | None]:
    n = int(values.size)
    if n == 0:
        return {"n": 0, "mean": None, "low": None, "high": None}
    mean = float(values.mean())
    if n < 2:
        return {"n": n, "mean": mean, "low": None, "high": None}
    half = Z_95 * float(values.std(ddof=1)) / math.sqrt(n)
    return {"n": n, "mean": mean, "low": max(0.0, mean - half), "high": min(1.0, mean + half)}


def slice_means_with_ci(
    metrics: Mapping[str, RunMetrics], slices: Mapping[str, Sequence[str]], metric_names: Sequence[str]
) -> dict[str, Any]:
    """``{"names": [...], "values": {metric: {config: [{n, mean, low, high} per slice]}}}``."""
    named = {ALL_SLICE: None, **slices}
    out: dict[str, dict[str, list]] = {m: {} for m in metric_names}
    for label, m in metrics.items():
        masks = slice_masks(m.qids, {name: (m.qids if members is None else members) for name, members in named.items()})
        for metric in metric_names:
            values = m.per_query[metric]
            out[metric][label] = [_mean_ci(values[masks[:, j]]) for j in range(masks.shape[1])]
    return {"names": list(named), "values": out}


def diff_histogram(base: RunMetrics, candidates: Mapping[str, RunMetrics], metric: str) -> dict[str, Any]:
    half = DIFF_BIN_WIDTH / 2
    edges = np.arange(-1.0 - half, 1.0 + half + 1e-9, DIFF_BIN_WIDTH)
    centers = [round(float(c), 2) for c in (edges[:-1] + half)]
    series = {}
    for label, m in candidates.items():
        d = m.per_query[metric] - base.per_query[metric]
        counts, _ = np.histogram(np.clip(d, -1.0, 1.0), bins=edges)
        series[label] = counts.tolist()
    return {"metric": metric, "centers": centers, "series": series}


def top1_histograms(configs: Sequence[EvalConfig]) -> dict[str, Any]:
    out = {}
    for cfg in configs:
        scores = np.asarray(list(cfg.results.get("top1", {}).values()), dtype=np.float64)
        if scores.size == 0:
            continue
        low, high = float(scores.min()), float(scores.max())
        if high - low < 1e-12:
            high = low + 1e-6
        counts, edges = np.histogram(scores, bins=TOP1_BINS, range=(low, high))
        centers = ((edges[:-1] + edges[1:]) / 2).tolist()
        out[cfg.label] = {
            "centers": [float(f"{c:.4g}") for c in centers],
            "counts": counts.tolist(),
            "median": float(np.median(scores)),
        }
    return out


def chart_data(run: EvalRun, configs: Sequence[EvalConfig], metrics: Mapping[str, RunMetrics]) -> dict[str, Any]:
    report = run.report
    baseline = report["baseline"]
    names = report["metric_names"]
    recall_ks = run.semantics.get("recall_ks", [])
    headline = "nDCG@10" if "nDCG@10" in names else names[0]
    return {
        "configs": [c.label for c in configs],
        "baseline": baseline,
        "recall": {
            "ks": recall_ks,
            "series": {
                c.label: [report["configs"][c.label]["metrics"]["means"].get(f"recall@{k}") for k in recall_ks]
                for c in configs
            },
        },
        "slices": {**slice_means_with_ci(metrics, run.slices or {}, names), "default_metric": headline},
        "diff": diff_histogram(metrics[baseline], {k: v for k, v in metrics.items() if k != baseline}, headline),
        "top1": top1_histograms(configs),
    }

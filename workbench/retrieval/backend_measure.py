"""Fidelity gates, speed micro-benchmarks and the automatic choice of an inference backend (Django-free).

Fidelity is always against ``torch-fp32`` on the caller's sample:

- encoders: cosine of each passage and query vector to the float32 one (mean and min); an index is built only with
  a backend whose minimum cosine is at least ``Thresholds.encoder_cosine_min`` (0.999);
- cross-encoders: on dev lists (a query, its candidates and, where known, their grades), the mean Spearman
  correlation of scores with float32's and the change of mean nDCG@10 (linear gain, ideal from the list's grades);
  where no list is judged, the top-10 overlap with float32's ranking stands in for nDCG
  (``Thresholds.rerank_top10_overlap_min``).

The choice (``choose_backend``): the fastest backend that passes, where "fastest" is batch throughput for encoders
and the p95 of reranking 50 candidates for cross-encoders; today's default path (bf16 autocast on CPUs with native
bf16, float32 elsewhere) is always eligible and another backend replaces it only when measured at least
``MIN_SPEEDUP`` faster, so the automatic choice is never slower than what ran before.

``measure_backends`` runs all of it and returns a JSON-ready report; the workbench stores it on the model version
and the benchmark scripts print it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from workbench.retrieval.backends import (
    BACKENDS,
    TORCH_FP32,
    CpuInfo,
    backend_unavailable_reason,
    cpu_info,
    default_backend,
    load_encoder_backend,
    load_reranker_backend,
)
from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.ndcg import ndcg_from_gains, ranked_by

# Another backend replaces today's default only when at least this much faster (timing noise must not flip it).
MIN_SPEEDUP = 1.05
RERANK_SIZES = (20, 50)
Log = Callable[[str], None]


@dataclass(frozen=True)
class Thresholds:
    """Below these a backend is refused (settings override the defaults)."""

    encoder_cosine_min: float = 0.999
    rerank_ndcg_delta_max: float = 0.005
    rerank_spearman_min: float = 0.98
    # Without judged lists: the share of float32's top 10 a backend must keep in its top 10.
    rerank_top10_overlap_min: float = 0.95


@dataclass
class DevList:
    """One query's candidates for reranker fidelity; ``grades[i]`` is passage i's grade (None: unjudged list)."""

    query: str
    passages: list[str]
    grades: list[int] | None = None


@dataclass
class BackendResult:
    """One backend's measurement: speed, fidelity to float32 and the verdict."""

    name: str
    available: bool = True
    unavailable_reason: str = ""
    items_per_s: float | None = None  # passages (encoders) or pairs (rerankers) per second
    speedup: float | None = None  # items/s relative to torch-fp32
    rerank_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # "50" -> {"p50": ..., "p95": ...}
    fidelity: dict[str, float] = field(default_factory=dict)
    passed: bool = False
    refused_reason: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- fidelity ---------------------------------------------------------------------------------------------------


def encoder_fidelity(
    reference: Any,
    candidate: Any,
    passages: Sequence[str],
    queries: Sequence[str] = (),
    *,
    reference_vectors: np.ndarray | None = None,
    candidate_vectors: np.ndarray | None = None,
) -> dict:
    """Cosine of ``candidate``'s vectors to ``reference``'s over the passages (batch) and queries (one at a time).

    ``*_vectors``: the passages' vectors when already computed (a timed run), so nothing is encoded twice."""
    cos = []
    if passages:
        a = reference_vectors if reference_vectors is not None else reference.encode_passages(list(passages))
        b = candidate_vectors if candidate_vectors is not None else candidate.encode_passages(list(passages))
        cos.extend(np.sum(a * b, axis=1).tolist())
    for q in queries:
        cos.append(float(np.dot(reference.encode_query(q), candidate.encode_query(q))))
    if not cos:
        raise RetrievalError("encoder fidelity needs at least one passage or query")
    values = np.asarray(cos, dtype=np.float64)
    return {"cosine_mean": float(values.mean()), "cosine_min": float(values.min()), "n": int(values.size)}


def ndcg_at_10(scores: Sequence[float], grades: Sequence[int]) -> float:
    """nDCG@10 of a list ranked by ``scores`` (ties by position), linear gain; ideal from the list's own grades."""
    return ndcg_from_gains([grades[i] for i in ranked_by(scores)], grades)


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def _top10(scores: np.ndarray) -> set[int]:
    return set(ranked_by(scores)[:10])


def reference_scores(reference: Any, dev_lists: Sequence[DevList]) -> list[np.ndarray]:
    """The reference reranker's scores of every dev list (computed once, compared with each backend)."""
    return [np.asarray(reference.score(d.query, d.passages), dtype=np.float64) for d in dev_lists]


def reranker_fidelity(
    reference: Any,
    candidate: Any,
    dev_lists: Sequence[DevList],
    *,
    reference_lists: list[np.ndarray] | None = None,
    candidate_lists: list[np.ndarray] | None = None,
) -> dict:
    """Spearman of scores and nDCG@10 change (judged lists), top-10 overlap (all lists), candidate vs reference."""
    if not dev_lists:
        raise RetrievalError("reranker fidelity needs at least one dev list")
    rhos, overlaps, ndcg_ref, ndcg_cand = [], [], [], []
    cached = reference_lists if reference_lists is not None else reference_scores(reference, dev_lists)
    theirs = candidate_lists if candidate_lists is not None else reference_scores(candidate, dev_lists)
    for dev, a, b in zip(dev_lists, cached, theirs, strict=True):
        rho = _spearman(a, b)
        if rho is not None:
            rhos.append(rho)
        top = _top10(a)
        overlaps.append(len(top & _top10(b)) / len(top) if top else 1.0)
        if dev.grades is not None and any(g > 0 for g in dev.grades):
            ndcg_ref.append(ndcg_at_10(a.tolist(), dev.grades))
            ndcg_cand.append(ndcg_at_10(b.tolist(), dev.grades))
    out: dict[str, float] = {
        "lists": len(dev_lists),
        "spearman_mean": float(np.mean(rhos)) if rhos else 1.0,
        "spearman_min": float(np.min(rhos)) if rhos else 1.0,
        "top10_overlap": float(np.mean(overlaps)),
        "judged_lists": len(ndcg_ref),
    }
    if ndcg_ref:
        out["ndcg10_reference"] = float(np.mean(ndcg_ref))
        out["ndcg10"] = float(np.mean(ndcg_cand))
        out["ndcg10_delta"] = out["ndcg10"] - out["ndcg10_reference"]
    return out


def encoder_verdict(fidelity: dict, thresholds: Thresholds) -> tuple[bool, str]:
    """(passes, refusal message naming the figure and the threshold)."""
    cos_min = fidelity["cosine_min"]
    if cos_min < thresholds.encoder_cosine_min:
        return False, (
            f"cosine to float32 min {cos_min:.4f} (mean {fidelity['cosine_mean']:.4f}) is below the index-building "
            f"threshold {thresholds.encoder_cosine_min:g}"
        )
    return True, ""


def reranker_verdict(fidelity: dict, thresholds: Thresholds) -> tuple[bool, str]:
    """(passes, refusal message). nDCG@10 is gated where lists are judged, top-10 overlap where none is."""
    reasons = []
    if fidelity["spearman_mean"] < thresholds.rerank_spearman_min:
        reasons.append(
            f"score Spearman to float32 {fidelity['spearman_mean']:.4f} is below {thresholds.rerank_spearman_min:g}"
        )
    if "ndcg10_delta" in fidelity:
        delta = fidelity["ndcg10_delta"]
        if abs(delta) > thresholds.rerank_ndcg_delta_max:
            reasons.append(
                f"nDCG@10 changes by {delta:+.4f} vs float32 (more than ±{thresholds.rerank_ndcg_delta_max:g})"
            )
    elif fidelity["top10_overlap"] < thresholds.rerank_top10_overlap_min:
        reasons.append(
            f"top-10 overlap with float32 {fidelity['top10_overlap']:.3f} is below "
            f"{thresholds.rerank_top10_overlap_min:g} (no judged dev lists)"
        )
    return (not reasons), "; ".join(reasons)


# --- the choice ---------------------------------------------------------------------------------------------------


def _speed_key(result: BackendResult, kind: str) -> float | None:
    """Higher is faster: items/s for encoders, 1 / p95 of a 50-candidate rerank for cross-encoders."""
    if kind == "cross-encoder":
        ms = result.rerank_ms.get(str(max(RERANK_SIZES)), {}).get("p95")
        return 1000.0 / ms if ms else None
    return result.items_per_s


def choose_backend(results: Sequence[BackendResult], *, kind: str, cpu: CpuInfo | None = None) -> tuple[str, str]:
    """(backend, why): the fastest passing backend, never slower than today's default (which is always eligible)."""
    default = default_backend(cpu)
    by_name = {r.name: r for r in results}
    base = by_name.get(default)
    base_speed = _speed_key(base, kind) if base is not None else None
    best, best_speed = default, base_speed
    for r in results:
        speed = _speed_key(r, kind)
        if r.name == default or not (r.available and r.passed) or speed is None:
            continue
        if base_speed is None or (speed >= base_speed * MIN_SPEEDUP and (best_speed is None or speed > best_speed)):
            best, best_speed = r.name, speed
    if best == default:
        return default, f"{default} is today's default on this CPU and no passing backend was measured faster"
    gain = f" ({best_speed / base_speed:.2f}x {default})" if base_speed else ""
    return best, f"fastest backend that passes fidelity{gain}"


# --- speed ------------------------------------------------------------------------------------------------------


def _percentiles(ms: list[float]) -> dict[str, float]:
    p50, p95 = np.percentile(np.asarray(ms), [50, 95])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "n": len(ms)}


def _time_encoder(encoder: Any, passages: Sequence[str], batch_size: int) -> tuple[float, np.ndarray]:
    encoder.encode_passages(list(passages[: min(8, len(passages))]), batch_size=batch_size)  # warm-up
    start = time.perf_counter()
    vectors = encoder.encode_passages(list(passages), batch_size=batch_size)
    return len(passages) / (time.perf_counter() - start), vectors


def _time_reranker(reranker: Any, dev_lists: Sequence[DevList], repeats: int) -> tuple[float, dict]:
    pool = [p for d in dev_lists for p in d.passages]
    queries = [d.query for d in dev_lists]
    reranker.score(queries[0], pool[:4])  # warm-up
    rerank_ms: dict[str, dict[str, float]] = {}
    pairs, seconds = 0, 0.0
    for size in RERANK_SIZES:
        times = []
        for i in range(repeats):
            dev = dev_lists[i % len(dev_lists)]
            passages = (dev.passages + pool)[:size] if len(dev.passages) < size else dev.passages[:size]
            start = time.perf_counter()
            reranker.score(dev.query, passages)
            elapsed = time.perf_counter() - start
            times.append(elapsed * 1000.0)
            pairs, seconds = pairs + len(passages), seconds + elapsed
        rerank_ms[str(size)] = _percentiles(times)
    return pairs / seconds, rerank_ms


# --- everything -----------------------------------------------------------------------------------------------


def measure_backends(
    kind: str,
    path: str,
    *,
    passages: Sequence[str] = (),
    queries: Sequence[str] = (),
    dev_lists: Sequence[DevList] = (),
    threads: int = 0,
    thresholds: Thresholds | None = None,
    backends: Sequence[str] | None = None,
    repeats: int = 5,
    batch_size: int = 32,
    max_length: int | None = None,
    cpu: CpuInfo | None = None,
    log: Log | None = None,
) -> dict[str, Any]:
    """Speed and fidelity of every backend for one model on this CPU, and the automatic choice.

    ``kind``: "bi-encoder" (needs ``passages``; ``queries`` optional) or "cross-encoder" (needs ``dev_lists``).
    ``threads``: CPU threads each backend uses (0: all cores); the caller sets torch's own thread count.
    Returns a JSON-ready dict: cpu, threads, thresholds, default, chosen, reason, backends (one dict per
    ``BackendResult``), measured_at.
    """
    if kind not in ("bi-encoder", "cross-encoder"):
        raise RetrievalError(f"unknown model kind {kind!r}")
    if kind == "bi-encoder" and not passages:
        raise RetrievalError("measuring an encoder needs sample passages")
    if kind == "cross-encoder" and not dev_lists:
        raise RetrievalError("measuring a cross-encoder needs dev lists (a query and its candidates)")
    cpu = cpu or cpu_info()
    thresholds = thresholds or Thresholds()
    say = log or (lambda _m: None)
    names = [TORCH_FP32, *[b for b in (backends or BACKENDS) if b != TORCH_FP32]]

    def load(name: str) -> Any:
        if kind == "bi-encoder":
            return load_encoder_backend(path, name, threads=threads, cpu=cpu)
        return load_reranker_backend(path, name, threads=threads, max_length=max_length, cpu=cpu)

    reference = load(TORCH_FP32)
    ref_vectors: np.ndarray | None = None
    ref_lists = reference_scores(reference, dev_lists) if kind == "cross-encoder" else None
    results: list[BackendResult] = []
    for name in names:
        reason = backend_unavailable_reason(name, cpu)
        if reason:
            results.append(BackendResult(name, available=False, unavailable_reason=reason, refused_reason=reason))
            say(f"{name}: not available here ({reason})")
            continue
        result = BackendResult(name)
        try:
            model = load(name)
            if kind == "bi-encoder":
                result.items_per_s, vectors = _time_encoder(model, passages, batch_size)
                if ref_vectors is None:  # torch-fp32 runs first
                    ref_vectors = vectors
                result.fidelity = encoder_fidelity(
                    reference, model, passages, queries, reference_vectors=ref_vectors, candidate_vectors=vectors
                )
                result.passed, result.refused_reason = (
                    (True, "") if name == TORCH_FP32 else encoder_verdict(result.fidelity, thresholds)
                )
            else:
                result.items_per_s, result.rerank_ms = _time_reranker(model, dev_lists, repeats)
                # float32 against itself: its reference scores stand for both (no second pass).
                result.fidelity = reranker_fidelity(
                    reference,
                    model,
                    dev_lists,
                    reference_lists=ref_lists,
                    candidate_lists=ref_lists if name == TORCH_FP32 else None,
                )
                result.passed, result.refused_reason = (
                    (True, "") if name == TORCH_FP32 else reranker_verdict(result.fidelity, thresholds)
                )
        except Exception as exc:  # one backend failing (a conversion error) must not lose the others' figures
            result.available, result.passed = False, False
            result.error = result.refused_reason = f"{type(exc).__name__}: {exc}"[:500]
        results.append(result)
        say(
            f"{name}: {result.items_per_s or 0:.1f}/s, "
            + ("passes" if result.passed else f"refused: {result.refused_reason}")
        )
    fp32 = next(r for r in results if r.name == TORCH_FP32)
    for r in results:
        if r.items_per_s and fp32.items_per_s:
            r.speedup = round(r.items_per_s / fp32.items_per_s, 3)
    chosen, why = choose_backend(results, kind=kind, cpu=cpu)
    return {
        "kind": kind,
        "cpu": cpu.to_dict(),
        "threads": threads,
        "thresholds": asdict(thresholds),
        "default": default_backend(cpu),
        "chosen": chosen,
        "reason": why,
        "backends": [r.to_dict() for r in results],
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }

"""Answer quality: ALCE citation precision/recall, faithfulness, hallucination, abstention, usefulness; CIs; compare.

Definitions (ALCE, Gao et al. 2023, as in its ``compute_autoais``):

- A claim's **citation recall** is 1 when its citations *jointly* support it, else 0 (0 for a claim with none).
- A citation of a jointly supported claim with several citations is **precise** unless it does not support the claim
  alone *and* the other citations still support it without it (over-citation). For a claim with one citation, or one
  its citations do not support, every citation is precise exactly when the claim is supported.
- Answer citation recall = supported claims / claims; answer citation precision = precise citations / citations
  (undefined with no citation). Run figures are means over answered (not abstained) answers.

Support comes from an *oracle*: a human review (joint label + which cited passages support alone), an automatic
judge, or gold evidence (``ClaimSupport.from_alone``). Undetermined support (``None``) is counted, never averaged in.

- **faithfulness**: supported claims / determined claims; **hallucination**: the answer has an unsupported or
  contradicted claim (or the reviewer said so); **partially** counts as neither supported nor hallucinated.
- **abstention precision** = should-have-abstained among abstained; **abstention recall** = abstained among
  should-have-abstained; **answer rate** = answered among answerable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import MetricsError
from .significance import holm_adjust, paired_tests, verdicts

SUPPORTED, PARTIAL, UNSUPPORTED, CONTRADICTED = "supported", "partial", "unsupported", "contradicted"
SUPPORT_LABELS = (SUPPORTED, PARTIAL, UNSUPPORTED, CONTRADICTED)
HALLUCINATED = frozenset({UNSUPPORTED, CONTRADICTED})

ANSWER_METRICS = ("citation_recall", "citation_precision", "faithfulness", "hallucination", "usefulness")
RATE_METRICS = ("abstention_precision", "abstention_recall", "answer_rate")
ALL_METRICS = (*ANSWER_METRICS, *RATE_METRICS)
LOWER_IS_BETTER = frozenset({"hallucination"})


@dataclass(frozen=True)
class ClaimSupport:
    """What an oracle says about one claim: ``label`` for its citations jointly, ``alone[c]`` per citation ``c``."""

    citations: tuple[int, ...]
    label: str | None  # one of SUPPORT_LABELS, or None when undetermined
    alone: Mapping[int, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.label is not None and self.label not in SUPPORT_LABELS:
            raise MetricsError(f"unknown support label {self.label!r}")
        if len(set(self.citations)) != len(self.citations):
            raise MetricsError(f"a claim cites the same passage twice: {self.citations}")

    @classmethod
    def from_alone(cls, citations: Sequence[int], alone: Mapping[int, bool]) -> ClaimSupport:
        """Gold-style oracle: the citations jointly support the claim when one of them does."""
        cits = tuple(citations)
        supported = any(alone.get(c, False) for c in cits)
        return cls(cits, SUPPORTED if supported else UNSUPPORTED, {c: bool(alone.get(c, False)) for c in cits})

    @property
    def joint(self) -> bool | None:
        return None if self.label is None else self.label == SUPPORTED

    def entails(self, subset: frozenset[int]) -> bool:
        """Do these citations support the claim? All of them: the joint label; fewer: one that supports alone."""
        if subset == frozenset(self.citations):
            return bool(self.joint)
        return any(self.alone.get(c, False) for c in subset)


def alce_claim(claim: ClaimSupport) -> tuple[int, int, int]:
    """(recall 0/1, precise citations, citations) of one claim, by ALCE's rule (see the module docstring)."""
    cits = claim.citations
    if not cits:
        return 0, 0, 0
    joint = bool(claim.joint)
    if joint and len(cits) > 1:
        precise = 0
        full = frozenset(cits)
        for c in cits:
            if claim.alone.get(c, False) or not claim.entails(full - {c}):
                precise += 1  # supports alone, or is needed by the others
        return 1, precise, len(cits)
    return int(joint), len(cits) if joint else 0, len(cits)


@dataclass(frozen=True)
class AnswerJudgement:
    """One answer as judged: abstention facts, claim support, and the reviewer's answer-level labels."""

    qid: str
    abstained: bool
    claims: tuple[ClaimSupport, ...] = ()
    should_abstain: bool | None = None  # None: unknown
    hallucination: bool | None = None  # reviewer's explicit flag; None: derive from the claims
    usefulness: float | None = None  # 1..5


def answer_scores(a: AnswerJudgement) -> dict[str, float | None]:
    """Per-answer figures; None where undefined (abstained, no citations, all claims undetermined, not rated)."""
    out: dict[str, float | None] = dict.fromkeys(ANSWER_METRICS)
    out["usefulness"] = a.usefulness
    if a.abstained:
        return out
    determined = [c for c in a.claims if c.label is not None]
    if a.claims and len(determined) == len(a.claims):
        parts = [alce_claim(c) for c in a.claims]
        out["citation_recall"] = sum(p[0] for p in parts) / len(parts)
        n_cit = sum(p[2] for p in parts)
        out["citation_precision"] = sum(p[1] for p in parts) / n_cit if n_cit else None
    if determined:
        out["faithfulness"] = sum(c.label == SUPPORTED for c in determined) / len(determined)
    if a.hallucination is not None:
        out["hallucination"] = float(a.hallucination)
    elif determined:
        out["hallucination"] = float(any(c.label in HALLUCINATED for c in determined))
    return out


def _ci(values: np.ndarray, weights_fn: Any, resamples: int, seed: int, level: float) -> tuple[float, float]:
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(resamples, values.size))
    means = weights_fn(idx)
    tail = (1 - level) / 2
    means = means[~np.isnan(means)]
    if means.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def mean_ci(values: Sequence[float], *, resamples: int = 2000, seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """Mean with a percentile-bootstrap CI over answers."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return {"n": 0, "mean": None, "low": None, "high": None}
    low, high = _ci(v, lambda idx: v[idx].mean(axis=1), resamples, seed, level)
    return {"n": int(v.size), "mean": float(v.mean()), "low": low, "high": high}


def ratio_ci(
    hits: Sequence[bool], members: Sequence[bool], *, resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, Any]:
    """sum(hits & members) / sum(members) with a bootstrap CI over all answers (the denominator varies too)."""
    h = np.asarray(hits, dtype=bool)
    m = np.asarray(members, dtype=bool)
    n = int(m.sum())
    if n == 0:
        return {"n": 0, "mean": None, "low": None, "high": None}
    num = (h & m).astype(np.float64)
    den = m.astype(np.float64)

    def ratio(idx: np.ndarray) -> np.ndarray:
        d = den[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(d > 0, num[idx].sum(axis=1) / np.where(d > 0, d, 1), np.nan)

    low, high = _ci(num, ratio, resamples, seed, level)
    return {"n": n, "mean": float(num.sum() / n), "low": low, "high": high}


def per_query_scores(answers: Sequence[AnswerJudgement]) -> dict[str, dict[str, float | None]]:
    """qid -> per-answer figures plus the 0/1 facts the rate metrics are made of."""
    out = {}
    for a in answers:
        row = answer_scores(a)
        row["abstained"] = float(a.abstained)
        row["should_abstain"] = None if a.should_abstain is None else float(a.should_abstain)
        out[a.qid] = row
    return out


def summarize(
    answers: Sequence[AnswerJudgement],
    *,
    slices: Mapping[str, Sequence[str]] | None = None,
    failed: Sequence[str] = (),
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Figures with bootstrap CIs for ``all`` and every slice (slice name -> query ids); counts of what is missing.

    ``failed``: query ids whose answer could not be produced; they are counted per slice, never scored.
    """
    by_qid = {a.qid: a for a in answers}
    if len(by_qid) != len(answers):
        raise MetricsError("one judgement per query id")
    groups: dict[str, list[str]] = {"all": sorted(by_qid)}
    failed_set = set(failed)
    for name, members in (slices or {}).items():
        if name != "all":
            groups[name] = sorted(set(members) & by_qid.keys())
    out: dict[str, Any] = {}
    for name, qids in groups.items():
        group = [by_qid[q] for q in qids]
        scores = [answer_scores(a) for a in group]
        metrics: dict[str, Any] = {}
        for m in ANSWER_METRICS:
            values = [s[m] for s in scores if s[m] is not None]
            metrics[m] = mean_ci(values, resamples=resamples, seed=seed, level=level)
        known = [a for a in group if a.should_abstain is not None]
        abst = [a.abstained for a in known]
        should = [bool(a.should_abstain) for a in known]
        metrics["abstention_precision"] = ratio_ci(should, abst, resamples=resamples, seed=seed, level=level)
        metrics["abstention_recall"] = ratio_ci(abst, should, resamples=resamples, seed=seed, level=level)
        metrics["answer_rate"] = ratio_ci(
            [not x for x in abst], [not s for s in should], resamples=resamples, seed=seed, level=level
        )
        undetermined = sum(1 for a in group for c in a.claims if c.label is None and not a.abstained)
        out[name] = {
            "n": len(group),
            "answered": sum(not a.abstained for a in group),
            "abstained": sum(a.abstained for a in group),
            "claims": sum(len(a.claims) for a in group if not a.abstained),
            "undetermined_claims": undetermined,
            "failed": len(failed_set if name == "all" else failed_set & set((slices or {}).get(name, ()))),
            "metrics": metrics,
        }
    return {"slices": out, "ci_level": level, "resamples": resamples, "seed": seed}


def compare_answer_runs(
    a: Mapping[str, Mapping[str, float | None]],
    b: Mapping[str, Mapping[str, float | None]],
    *,
    slices: Mapping[str, Sequence[str]] | None = None,
    metrics: Sequence[str] = ANSWER_METRICS,
    resamples: int = 10_000,
    seed: int = 0,
    alpha: float = 0.05,
) -> list[dict[str, Any]]:
    """B against baseline A, paired over queries both answered with the metric defined (``per_query_scores``).

    The paired randomization test and bootstrap CI of ``significance.paired_tests``, one cell per (slice, metric);
    Holm correction over every cell. Verdicts read "better" in the metric's good direction (lower hallucination).
    """
    common = sorted(set(a) & set(b))
    groups: dict[str, set[str]] = {"all": set(common)}
    for name, members in (slices or {}).items():
        if name != "all":
            groups[name] = set(members) & set(common)
    cells: list[dict[str, Any]] = []
    raw_p: list[float] = []
    for slice_name, members in groups.items():
        for m in metrics:
            qids = [q for q in common if q in members and a[q].get(m) is not None and b[q].get(m) is not None]
            cell: dict[str, Any] = {"slice": slice_name, "metric": m, "n": len(qids)}
            if qids:
                va = np.array([a[q][m] for q in qids], dtype=np.float64)
                vb = np.array([b[q][m] for q in qids], dtype=np.float64)
                t = paired_tests(va, vb, resamples=resamples, seed=seed, classic_tests=False)
                cell.update(
                    mean_a=float(t.mean_a[0, 0]), mean_b=float(t.mean_b[0, 0]), diff=float(t.diff[0, 0]),
                    ci_low=float(t.ci_low[0, 0]), ci_high=float(t.ci_high[0, 0]),
                    p=float(t.p_randomization[0, 0]) if t.p_randomization is not None else float("nan"),
                )  # fmt: skip
            else:
                cell.update(mean_a=None, mean_b=None, diff=None, ci_low=None, ci_high=None, p=float("nan"))
            raw_p.append(cell["p"])
            cells.append(cell)
    adjusted = holm_adjust(np.array(raw_p, dtype=np.float64)) if cells else np.array([])
    for cell, p_adj in zip(cells, adjusted, strict=True):
        cell["p_holm"] = None if np.isnan(p_adj) else float(p_adj)
        if cell["p"] != cell["p"]:  # NaN
            cell["p"] = None
        if cell["diff"] is None or cell["p_holm"] is None:
            cell["verdict"] = "no data" if cell["diff"] is None else "not significant"
            continue
        signed = -cell["diff"] if cell["metric"] in LOWER_IS_BETTER else cell["diff"]
        cell["verdict"] = str(verdicts(np.array([signed]), np.array([cell["p_holm"]]), alpha=alpha)[0])
    return cells


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float | None:
    """Cohen's kappa (scikit-learn); 1.0 when both raters give one identical label throughout, None if no items."""
    if len(a) != len(b):
        raise MetricsError("kappa needs paired labels")
    if not a:
        return None
    if len(set(a) | set(b)) == 1:
        return 1.0
    from sklearn.metrics import cohen_kappa_score

    value = float(cohen_kappa_score(list(a), list(b)))
    return None if np.isnan(value) else value


def agreement(items: Mapping[Any, Mapping[Any, str]]) -> dict[str, Any]:
    """Agreement of the first two raters (by rater id order) on every item rated at least twice.

    ``items``: item -> {rater: label}. Returns the overlap size, the share of identical labels and Cohen's kappa.
    """
    pairs = []
    for labels in items.values():
        if len(labels) >= 2:
            first, second = sorted(labels, key=str)[:2]
            pairs.append((labels[first], labels[second]))
    if not pairs:
        return {"n": 0, "observed": None, "kappa": None, "disagreements": 0}
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    same = sum(x == y for x, y in pairs)
    return {
        "n": len(pairs),
        "observed": same / len(pairs),
        "kappa": cohen_kappa(xs, ys),
        "disagreements": len(pairs) - same,
    }


def judge_calibration(
    human: Mapping[Any, str],
    auto: Mapping[Any, str | None],
    *,
    min_kappa: float = 0.6,
    min_items: int = 30,
) -> dict[str, Any]:
    """How far an automatic support judge can be trusted: kappa and bias against human claim labels.

    Compared on "supported" vs not, over claims both labelled; undetermined automatic outputs are counted and left
    out. ``bias`` = automatic supported share - human supported share on the same claims (positive: too lenient).
    ``usable`` only when at least ``min_items`` claims are compared and kappa >= ``min_kappa``.
    """
    undetermined = sum(1 for k in auto if auto[k] is None)
    keys = [k for k in auto if auto[k] is not None and k in human]
    h = [human[k] == SUPPORTED for k in keys]
    m = [auto[k] == SUPPORTED for k in keys]
    kappa = cohen_kappa(h, m) if keys else None
    bias = (sum(m) - sum(h)) / len(keys) if keys else None
    observed = sum(x == y for x, y in zip(h, m, strict=True)) / len(keys) if keys else None
    usable = kappa is not None and len(keys) >= min_items and kappa >= min_kappa
    if not keys:
        why = "no claim has both a human and an automatic label"
    elif len(keys) < min_items:
        why = f"only {len(keys)} claims compared (at least {min_items} needed)"
    elif kappa is None or kappa < min_kappa:
        why = f"kappa {kappa if kappa is None else round(kappa, 3)} is below {min_kappa}"
    else:
        why = f"kappa {kappa:.3f} >= {min_kappa} on {len(keys)} claims"
    return {
        "n": len(keys), "kappa": kappa, "bias": bias, "observed": observed, "undetermined": undetermined,
        "automatic": len(auto), "min_kappa": min_kappa, "min_items": min_items, "usable": usable, "why": why,
    }  # fmt: skip

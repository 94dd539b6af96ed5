"""The reranker dev evaluation: first-stage lists reranked by a model, scored against one ideal for every ranking.

sentence-transformers' ``CrossEncoderRerankingEvaluator`` with ``always_rerank_positives=False`` counts the positives
the first stage missed in the *base* ranking's ideal but not in the reranked one's, so any model's nDCG@10 is
credited with the first stage's misses, and "beats the first stage" is biased towards the model. Here every ranking
(first stage, reranker, blend) shares one ideal: the list's positives plus the missed ones. The metric names are the
library's (``dev_ndcg@10``, ``dev_base_ndcg@10``, ``dev_mrr@10``, ``dev_map``), so the trainer selects checkpoints
as before.

It also keeps each evaluation's scores by training step, so the chosen checkpoint's scores can be blended with the
first stage's (``workbench.retrieval.blend``) without another pass over the dev pairs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

from workbench.retrieval.blend import BlendChoice, DevList, choose_blend_weight, ndcg10

AT_K = 10


def _mrr10(scores: np.ndarray, relevant: list[bool]) -> float:
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:AT_K]
    return next((1.0 / (r + 1) for r, i in enumerate(order) if relevant[i]), 0.0)


def _average_precision(scores: np.ndarray, relevant: list[bool], missed: int) -> float:
    total = sum(relevant) + missed
    if not total:
        return 0.0
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    hits, precision_sum = 0, 0.0
    for r, i in enumerate(order, start=1):
        if relevant[i]:
            hits += 1
            precision_sum += hits / r
    return precision_sum / total


class RerankDevEvaluator(CrossEncoderRerankingEvaluator):
    """Reranks each sample's ``documents`` (first-stage order; ``first_stage_scores`` optional, for blending)."""

    def __init__(self, samples: list[dict[str, Any]], *, name: str = "dev", batch_size: int = 32) -> None:
        super().__init__(
            samples=samples, at_k=AT_K, always_rerank_positives=False, name=name, batch_size=batch_size,
            write_csv=False,
        )  # fmt: skip
        self._lists = []
        for s in samples:
            positives = set([s["positive"]] if isinstance(s["positive"], str) else s["positive"])
            relevant = [d in positives for d in s["documents"]]
            self._lists.append((relevant, len(positives) - sum(relevant)))
        self.scores_by_step: dict[int, list[np.ndarray]] = {}

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        # a list without a positive scores 0 whatever the order (as in the library): its pairs are not scored
        scored = [any(relevant) for relevant, _ in self._lists]
        pairs = [[s["query"], d] for s, keep in zip(self.samples, scored, strict=True) if keep for d in s["documents"]]
        flat = (
            np.asarray(
                model.predict(pairs, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False),
                dtype=np.float64,
            ).reshape(-1)
            if pairs
            else np.empty(0)
        )
        per_sample, start = [], 0
        for s, keep in zip(self.samples, scored, strict=True):
            n = len(s["documents"])
            per_sample.append(flat[start : start + n] if keep else -np.arange(n, dtype=np.float64))
            start += n if keep else 0
        self.scores_by_step[steps] = per_sample
        rows = {"ndcg": [], "mrr": [], "map": [], "base_ndcg": [], "base_mrr": [], "base_map": []}
        for scores, (relevant, missed) in zip(per_sample, self._lists, strict=True):
            base = -np.arange(len(relevant), dtype=np.float64)
            for prefix, ranked in (("", scores), ("base_", base)):
                rows[f"{prefix}ndcg"].append(ndcg10(ranked, relevant, missed))
                rows[f"{prefix}mrr"].append(_mrr10(ranked, relevant))
                rows[f"{prefix}map"].append(_average_precision(ranked, relevant, missed))
        metrics = {
            "map": float(np.mean(rows["map"])),
            f"mrr@{AT_K}": float(np.mean(rows["mrr"])),
            f"ndcg@{AT_K}": float(np.mean(rows["ndcg"])),
            "base_map": float(np.mean(rows["base_map"])),
            f"base_mrr@{AT_K}": float(np.mean(rows["base_mrr"])),
            f"base_ndcg@{AT_K}": float(np.mean(rows["base_ndcg"])),
        }
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def blend_choice(self, step: int) -> BlendChoice | None:
        """The rerank weight for the model evaluated at ``step`` (None when that step was not evaluated or the
        samples carry no first-stage scores)."""
        scores = self.scores_by_step.get(step)
        if scores is None or not self.samples or any("first_stage_scores" not in s for s in self.samples):
            return None
        lists = [
            DevList(first_stage=s["first_stage_scores"], rerank=r, relevant=relevant, missed=missed)
            for s, r, (relevant, missed) in zip(self.samples, scores, self._lists, strict=True)
        ]
        return choose_blend_weight(lists)

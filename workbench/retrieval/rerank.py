"""Second-stage rerankers: anything with ``score(query, passages) -> scores`` plugs into ``search``."""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

import numpy as np

from workbench.retrieval.encoders import Precision, cpu_has_fast_bf16, load_cross_encoder
from workbench.retrieval.errors import RetrievalError


@runtime_checkable
class Reranker(Protocol):
    """Scores passages for a query; higher is more relevant. Scores only need to be comparable within one call."""

    def score(self, query: str, passages: list[str]) -> np.ndarray: ...


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` (loaded from a local path, cached per process) as a ``Reranker``."""

    def __init__(
        self,
        model: str | os.PathLike[str] | Any,
        *,
        batch_size: int = 32,
        max_length: int | None = None,
        device: str = "cpu",
        precision: Precision = "auto",
    ) -> None:
        if batch_size < 1:
            raise RetrievalError(f"batch size must be at least 1 (got {batch_size})")
        self.model = load_cross_encoder(model, device=device) if isinstance(model, (str, os.PathLike)) else model
        self.batch_size = batch_size
        # Pairs longer than this many tokens are truncated; None keeps the model's own limit.
        self.max_length = max_length
        if precision not in ("auto", "float32", "bfloat16"):
            raise RetrievalError(f"unknown precision {precision!r}: use auto, float32 or bfloat16")
        # bfloat16 autocast roughly halves cross-encoder time on CPUs with native bf16 (AMX/AVX512-BF16); elsewhere
        # it is emulated and slower, so "auto" uses it only there.
        self.precision = (
            ("bfloat16" if device == "cpu" and cpu_has_fast_bf16() else "float32") if precision == "auto" else precision
        )

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        """Relevance score of each passage for ``query`` (float32, same order as ``passages``)."""
        if not passages:
            return np.empty(0, dtype=np.float32)
        kwargs: dict[str, Any] = {}
        if self.max_length is not None:
            kwargs["processing_kwargs"] = {"text": {"max_length": self.max_length, "truncation": True}}
        import contextlib

        import torch

        autocast = (
            torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bfloat16" else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            scores = self.model.predict(
                [(query, p) for p in passages],
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                **kwargs,
            )
        return np.asarray(scores, dtype=np.float32).reshape(len(passages))

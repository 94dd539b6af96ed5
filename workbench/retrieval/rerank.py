"""Second-stage rerankers: anything with ``score(query, passages) -> scores`` plugs into ``search``."""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

import numpy as np

from workbench.retrieval.encoders import load_cross_encoder
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
    ) -> None:
        if batch_size < 1:
            raise RetrievalError(f"batch size must be at least 1 (got {batch_size})")
        self.model = load_cross_encoder(model, device=device) if isinstance(model, (str, os.PathLike)) else model
        self.batch_size = batch_size
        # Pairs longer than this many tokens are truncated; None keeps the model's own limit.
        self.max_length = max_length

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        """Relevance score of each passage for ``query`` (float32, same order as ``passages``)."""
        if not passages:
            return np.empty(0, dtype=np.float32)
        kwargs: dict[str, Any] = {}
        if self.max_length is not None:
            kwargs["processing_kwargs"] = {"text": {"max_length": self.max_length, "truncation": True}}
        scores = self.model.predict(
            [(query, p) for p in passages],
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            **kwargs,
        )
        return np.asarray(scores, dtype=np.float32).reshape(len(passages))

"""Loaded engines for index versions and rerankers, per process: bounded caches, cold-start timing, warm-up.

The engine (``workbench.retrieval``) keeps the caches; this module names the keys after database rows, sizes the
caches from settings, counts load time as the "load" stage users see, and sets torch's CPU threads per call.

Torch threads: ``torch.set_num_threads`` sets the calling thread's OpenMP team size (a new thread starts from the
process-wide value), so setting it per call in the thread that searches is safe under a threaded server: one
request thread's reranking (all cores) never changes another thread's query encoding (one core).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings

from workbench.errors import WorkbenchError
from workbench.models import IndexVersion, ModelVersion, SearchConfiguration
from workbench.retrieval import backends
from workbench.retrieval.cache import BoundedCache
from workbench.retrieval.encoders import load_cross_encoder, models_cache
from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.rerank import CrossEncoderReranker
from workbench.retrieval.search import LoadedIndex, indexes_cache, load_index_timed

rerankers_cache: BoundedCache[Any] = BoundedCache(4, name="rerankers")
WARM_QUERY = "warm-up query"


@dataclass(frozen=True)
class BackendChoice:
    """The inference backend a model version runs with in this process.

    ``backend`` "" means today's default path untouched (never measured, or measured on another CPU); ``label`` is
    what stage timings and pages show, saying when it is a fallback.
    """

    backend: str
    label: str
    note: str = ""


def backend_choice(model: ModelVersion) -> BackendChoice:
    """The measured backend where this CPU is the one it was measured on, else the default path (and why)."""
    default = backends.default_backend()
    report = model.backend_report or {}
    if not model.inference_backend or not report:
        return BackendChoice("", default)
    measured_on = (report.get("cpu") or {}).get("signature", "")
    here = backends.cpu_info().signature
    if measured_on != here:
        return BackendChoice(
            "", f"{default} (fallback)", f"measured on {measured_on or 'an unknown CPU'}; this CPU is {here}"
        )
    reason = backends.backend_unavailable_reason(model.inference_backend)
    if reason:
        return BackendChoice("", f"{default} (fallback)", f"{model.inference_backend}: {reason}")
    return BackendChoice(model.inference_backend, model.inference_backend)


def caches_configure() -> None:
    """Size the per-process caches from settings (called once when the app is ready)."""
    indexes_cache.resize(settings.INDEX_CACHE_SIZE)
    models_cache.resize(settings.MODEL_CACHE_SIZE)
    rerankers_cache.resize(settings.RERANKER_CACHE_SIZE)


def torch_threads_apply(n: int) -> None:
    """Set torch's CPU threads for what the calling thread does next (0: all cores)."""
    import torch

    wanted = n if n > 0 else (os.cpu_count() or 1)
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch threads in this thread, then go back to the query-time setting."""
    torch_threads_apply(n)
    try:
        yield
    finally:
        torch_threads_apply(settings.SEARCH_TORCH_THREADS)


def index_cache_key(index: IndexVersion) -> str:
    # The path is part of the key: ids can repeat across databases (tests, restores); directories never do. The
    # encoder's backend too: a new measurement must not leave the old query encoder cached.
    return f"index-{index.pk}:{index.path}:{backend_choice(index.encoder).label}"


def engine_load(index: IndexVersion) -> tuple[LoadedIndex, float]:
    """The loaded index (with its encoder) and the milliseconds this call spent loading it (0 when cached).

    Queries are embedded with the encoder version's measured backend where it holds for this CPU."""
    torch_threads_apply(settings.SEARCH_TORCH_THREADS)
    choice = backend_choice(index.encoder)

    def query_encoder() -> Any:
        if not choice.backend:
            return None  # today's path: torch float32 through the index's own encoder
        return backends.load_encoder_backend(index.encoder.path, choice.backend, threads=settings.SEARCH_TORCH_THREADS)

    try:
        return load_index_timed(
            index.path, cache_key=index_cache_key(index), encoder_path=index.encoder.path, query_encoder=query_encoder
        )
    except RetrievalError as exc:
        raise WorkbenchError(f"{index} cannot be loaded: {exc}") from None


def engine_for(index: IndexVersion) -> LoadedIndex:
    return engine_load(index)[0]


def engine_cache_drop(index: IndexVersion) -> None:
    """Forget the loaded index, whichever query backend it was loaded with."""
    prefix = f"index-{index.pk}:{index.path}:"
    indexes_cache.evict_where(lambda key: isinstance(key, str) and key.startswith(prefix))


class ThreadedReranker:
    """Scores with its own torch thread count: a batch of pairs uses the cores a single query encoding should not.

    ``name`` is the backend label the rerank stage is timed under."""

    def __init__(self, inner: Any, threads: int, name: str = "") -> None:
        self.inner, self.threads, self.name = inner, threads, name

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        with torch_threads(self.threads):
            return self.inner.score(query, passages)


def reranker_load(model: ModelVersion) -> tuple[ThreadedReranker, float]:
    """A reranker for a cross-encoder version and the milliseconds spent loading it (0 when cached)."""
    if model.kind != ModelVersion.Kind.CROSS_ENCODER:
        raise WorkbenchError(f"{model.name} is not a cross-encoder.")

    choice = backend_choice(model)

    def load() -> Any:
        max_length = rerank_max_length(model.path)
        if choice.backend:
            return backends.load_reranker_backend(
                model.path, choice.backend, threads=settings.RERANK_TORCH_THREADS, max_length=max_length
            )
        return CrossEncoderReranker(model.path, max_length=max_length)

    start = time.perf_counter()
    try:
        inner, fresh = rerankers_cache.get_or_load(reranker_cache_key(model), load)
    except RetrievalError as exc:
        raise WorkbenchError(f"{model.name} cannot be loaded: {exc}") from None
    load_ms = (time.perf_counter() - start) * 1000.0 if fresh else 0.0
    return ThreadedReranker(inner, settings.RERANK_TORCH_THREADS, choice.label), load_ms


def rerank_max_length(path: str) -> int:
    """Tokens per pair: ``RERANK_MAX_LENGTH``, never more than the model has positions for."""
    limit = getattr(load_cross_encoder(path), "max_seq_length", None) or 512
    return min(settings.RERANK_MAX_LENGTH, limit)


def reranker_cache_key(model: ModelVersion) -> tuple:
    return (model.pk, model.path, backend_choice(model).label)


def reranker_for(model: ModelVersion) -> ThreadedReranker:
    return reranker_load(model)[0]


def configuration_warm(configuration: SearchConfiguration) -> dict[str, float]:
    """Load a configuration's index, encoder and reranker in this process and run one query through them, so the
    first real search pays no cold start. Returns milliseconds per step; raises ``WorkbenchError`` if anything
    cannot be loaded (nothing is served that cannot)."""
    engine, index_ms = engine_load(configuration.index)
    rerank, rerank_ms = (None, 0.0)
    if configuration.reranker_id:
        rerank, rerank_ms = reranker_load(configuration.reranker)
    start = time.perf_counter()
    try:
        engine.search_spec(WARM_QUERY, configuration.spec, k=1, rerank=rerank)
    except RetrievalError as exc:
        raise WorkbenchError(f"{configuration.name} cannot search: {exc}") from None
    return {"index_ms": index_ms, "reranker_ms": rerank_ms, "query_ms": (time.perf_counter() - start) * 1000.0}


def pin_served(configurations: list[SearchConfiguration]) -> None:
    """Keep what is served (and, later, a release's rollback target) in the caches whatever their size."""
    indexes_cache.pin(index_cache_key(c.index) for c in configurations)
    rerankers_cache.pin(reranker_cache_key(c.reranker) for c in configurations if c.reranker_id)

"""CPU inference backends for encoders and cross-encoders, chosen per CPU and gated on fidelity to float32.

Backends (``BACKENDS``):

- ``torch-fp32``: sentence-transformers in float32 (the reference every other backend is compared with);
- ``torch-bf16``: the same under bfloat16 autocast, offered only where the CPU multiplies bf16 natively (AMX or
  AVX512-BF16); elsewhere it is emulated and slower;
- ``torch-int8``: torch dynamic int8 quantization of the transformer's Linear layers, per output channel, keeping
  the feed-forward output projections (``*.output.dense`` outside attention) in float32: quantizing those costs the
  most fidelity for the least speed (MiniLM: cosine mean 0.992 vs 0.983 with them);
- ``openvino-fp32``: the transformer converted to OpenVINO and compiled for the CPU in float32 (precision hint
  pinned: OpenVINO would otherwise pick bf16 by itself on AMX CPUs); pooling and normalisation are done in numpy
  from the model's own Pooling settings. Batch encoding runs several length-sorted batches at once on throughput
  streams.

ONNX Runtime is not a backend: float32 ONNX Runtime measured 0.76-0.86x torch on a 2-core AVX2 EPYC, and its int8
kept poor fidelity (cosine 0.925), so it adds a dependency and gains nothing.

Every backend object has the same outputs API as the torch path: encoders ``encode_passages(texts, ...)`` and
``encode_query(text)`` (L2-normalised float32), rerankers ``score(query, passages)``. ``load_encoder_backend`` and
``load_reranker_backend`` cache them per (path, backend, threads). Fidelity and speed measurement live in
``workbench.retrieval.backend_measure``.
"""

from __future__ import annotations

import functools
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.retrieval.cache import BoundedCache
from workbench.retrieval.encoders import (
    CancelCheck,
    ProgressCallback,
    embedding_dimension,
    encode_passages,
    encode_query,
    isa_capped_flags,
    validate_model_dir,
)
from workbench.retrieval.errors import OperationCancelled, RetrievalError

TORCH_FP32, TORCH_BF16, TORCH_INT8, OPENVINO_FP32 = "torch-fp32", "torch-bf16", "torch-int8", "openvino-fp32"
BACKENDS = (TORCH_FP32, TORCH_BF16, TORCH_INT8, OPENVINO_FP32)
# Flags that decide which backends exist and how fast they are: a report measured on one set does not hold on another.
RELEVANT_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")

backends_cache: BoundedCache[Any] = BoundedCache(8, name="backends")


class BackendUnavailable(RetrievalError):
    """This backend cannot run here (library missing, CPU lacks the instructions, model not supported)."""


# --- the CPU ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuInfo:
    """The CPU model and its instruction-set flags (from /proc/cpuinfo)."""

    model: str
    flags: frozenset[str]

    @property
    def native_bf16(self) -> bool:
        return "amx_bf16" in self.flags or "avx512_bf16" in self.flags

    @property
    def signature(self) -> str:
        """What a measurement holds for: the model name and the flags that change backend speed."""
        return f"{self.model} [{' '.join(f for f in RELEVANT_FLAGS if f in self.flags)}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "flags": [f for f in RELEVANT_FLAGS if f in self.flags],
            "signature": self.signature,
            "cores": os.cpu_count() or 1,
        }


@functools.cache
def cpu_info() -> CpuInfo:
    """This machine's CPU (read once per process)."""
    model, flags = "unknown CPU", ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown CPU":
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1]
                if flags and model != "unknown CPU":
                    break
    except OSError:
        pass
    return CpuInfo(model=model, flags=isa_capped_flags(set(flags.split())))


def default_backend(cpu: CpuInfo | None = None) -> str:
    """Today's path without any measurement: bf16 autocast where the CPU runs it natively, else float32."""
    return TORCH_BF16 if (cpu or cpu_info()).native_bf16 else TORCH_FP32


def _openvino_importable() -> bool:
    try:
        import openvino  # noqa: F401
    except Exception:
        return False
    return True


def _torch_int8_engine() -> str | None:
    import torch

    engines = torch.backends.quantized.supported_engines
    return next((e for e in ("x86", "fbgemm") if e in engines), None)


def backend_unavailable_reason(name: str, cpu: CpuInfo | None = None) -> str:
    """Why ``name`` cannot run on this CPU with these libraries; "" when it can."""
    cpu = cpu or cpu_info()
    if name not in BACKENDS:
        return f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}"
    if name == TORCH_BF16 and not cpu.native_bf16:
        return "this CPU has no native bfloat16 (AMX or AVX512-BF16): bf16 would be emulated and slower"
    if name == TORCH_INT8:
        if "avx2" not in cpu.flags:
            return "torch int8 kernels need AVX2"
        if _torch_int8_engine() is None:
            return "this torch build has no x86/fbgemm quantized engine"
    if name == OPENVINO_FP32 and not _openvino_importable():
        return "openvino is not installed"
    return ""


def available_backends(cpu: CpuInfo | None = None) -> list[str]:
    """Backends that can run on this CPU, in ``BACKENDS`` order."""
    return [b for b in BACKENDS if not backend_unavailable_reason(b, cpu)]


# --- torch int8 -------------------------------------------------------------------------------------------------


def _int8_module_names(module: Any) -> set[str]:
    """Linear layers to quantize: all but the feed-forward output projections (attention's own output is kept)."""
    import torch

    return {
        name
        for name, sub in module.named_modules()
        if isinstance(sub, torch.nn.Linear)
        and not (name.endswith("output.dense") and "attention" not in name)
        and "classifier" not in name  # the relevance head is one tiny layer: nothing to gain
        and "pooler" not in name
    }


def quantize_int8_(module: Any) -> Any:
    """Dynamic int8 quantization of ``module`` in place (it must be in place: swapping in a new module object leaves
    sentence-transformers calling the old one). Per-channel weights; see ``_int8_module_names``."""
    import torch

    engine = _torch_int8_engine()
    if engine is None:
        raise BackendUnavailable("this torch build has no x86/fbgemm quantized engine")
    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao (not installed); it still works in torch 2.13.
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        spec = dict.fromkeys(_int8_module_names(module), per_channel_dynamic_qconfig)
        quantize_dynamic(module, spec, dtype=torch.qint8, inplace=True)
    return module


# --- OpenVINO ---------------------------------------------------------------------------------------------------

_ov_core: Any = None
_ov_lock = threading.Lock()


def _core() -> Any:
    global _ov_core
    with _ov_lock:
        if _ov_core is None:
            import openvino as ov

            _ov_core = ov.Core()
        return _ov_core


def _tensor_features(features: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {k: v for k, v in features.items() if isinstance(v, torch.Tensor)}


class _OpenVinoModel:
    """One transformer compiled twice: throughput streams for batches, a latency-mode request pool for one call."""

    def __init__(self, hf_model: Any, example: dict[str, Any], threads: int) -> None:
        import openvino as ov
        import torch

        self.input_names = list(example)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = ov.convert_model(hf_model, example_input=example)
        n = threads if threads > 0 else (os.cpu_count() or 1)
        common = {"INFERENCE_NUM_THREADS": n, "INFERENCE_PRECISION_HINT": "f32"}
        core = _core()
        self.batch = core.compile_model(
            converted, "CPU", {**common, "PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": max(1, min(n, 4))}
        )
        self.single = core.compile_model(converted, "CPU", {**common, "PERFORMANCE_HINT": "LATENCY"})
        self.jobs = max(1, int(self.batch.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._free: list[Any] = []
        self._lock = threading.Lock()

    def infer_one(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """First output for one batch; infer requests are not thread-safe, so each caller takes its own."""
        with self._lock:
            request = self._free.pop() if self._free else self.single.create_infer_request()
        try:
            request.infer(inputs)
            return np.array(request.get_output_tensor(0).data, copy=True)
        finally:
            with self._lock:
                self._free.append(request)

    def infer_many(self, batches: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
        """First output of each batch, run ``jobs`` at a time on the throughput streams."""
        import openvino as ov

        out: list[np.ndarray | None] = [None] * len(batches)

        def done(request: Any, i: int) -> None:
            out[i] = np.array(request.get_output_tensor(0).data, copy=True)

        queue = ov.AsyncInferQueue(self.batch, self.jobs)
        queue.set_callback(done)
        for i, inputs in enumerate(batches):
            queue.start_async(inputs, userdata=i)
        queue.wait_all()
        missing = sum(o is None for o in out)
        if missing:
            raise RetrievalError(f"OpenVINO returned no output for {missing} of {len(batches)} batches")
        return out  # type: ignore[return-value]


def _numpy_inputs(features: dict[str, Any], names: Sequence[str]) -> dict[str, np.ndarray]:
    return {name: features[name].numpy() for name in names if name in features}


# --- encoders ---------------------------------------------------------------------------------------------------


class TorchEncoder:
    """The sentence-transformers path (float32, bf16 autocast or an int8-quantized copy)."""

    def __init__(self, model: Any, *, name: str, precision: str = "float32") -> None:
        self.model, self.name, self.precision = model, name, precision

    @property
    def dimension(self) -> int:
        return embedding_dimension(self.model)

    def encode_passages(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        progress_callback: ProgressCallback | None = None,
        cancel_check: CancelCheck | None = None,
    ) -> np.ndarray:
        return encode_passages(
            self.model,
            texts,
            batch_size=batch_size,
            progress_callback=progress_callback,
            cancel_check=cancel_check,
            precision=self.precision,  # type: ignore[arg-type]
        )

    def encode_query(self, text: str) -> np.ndarray:
        if self.precision != "bfloat16":
            return encode_query(self.model, text)
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            return encode_query(self.model, text)


_POOLING_MODES = ("mean", "cls", "max")


def _pooling_of(model: Any) -> tuple[str, bool]:
    """(pooling mode, include_prompt) from the model's own modules; refuses layouts numpy pooling would not match."""
    names = [type(m).__name__ for m in model]
    if names[:2] != ["Transformer", "Pooling"] or any(n != "Normalize" for n in names[2:]):
        raise BackendUnavailable(f"OpenVINO supports Transformer + Pooling (+ Normalize) encoders, not {names}")
    pooling = model[1]
    mode = getattr(pooling, "pooling_mode", None)
    if isinstance(mode, (list, tuple)):
        mode = mode[0] if len(mode) == 1 else None
    if mode not in _POOLING_MODES:
        raise BackendUnavailable(f"OpenVINO backend supports {', '.join(_POOLING_MODES)} pooling, not {mode!r}")
    return str(mode), bool(getattr(pooling, "include_prompt", True))


def _pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """sentence-transformers' pooling in numpy, then L2 normalisation (``encode_passages`` always normalises)."""
    if mode == "cls":
        pooled = hidden[:, 0]
    elif mode == "max":
        pooled = np.where(mask[..., None] > 0, hidden, -1e9).max(axis=1)
    else:
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


class OpenVinoEncoder:
    """A bi-encoder's transformer run by OpenVINO; tokenisation and prompts as sentence-transformers does them."""

    name = OPENVINO_FP32

    def __init__(self, model: Any, *, threads: int = 0) -> None:
        from workbench.retrieval.encoders import _prompt

        self.model = model
        self.mode, include_prompt = _pooling_of(model)
        self.query_prompt, self.document_prompt = _prompt(model, "query"), _prompt(model, "document")
        if not include_prompt and (self.query_prompt or self.document_prompt):
            raise BackendUnavailable("this encoder pools without its prompt tokens; OpenVINO pooling does not")
        example = _tensor_features(model.preprocess(["an example passage to trace the model with"]))
        self.ov = _OpenVinoModel(model[0].auto_model, example, threads)

    @property
    def dimension(self) -> int:
        return embedding_dimension(self.model)

    def _features(self, texts: list[str], prompt: str | None) -> dict[str, np.ndarray]:
        return _numpy_inputs(_tensor_features(self.model.preprocess(texts, prompt=prompt)), self.ov.input_names)

    def encode_passages(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        progress_callback: ProgressCallback | None = None,
        cancel_check: CancelCheck | None = None,
    ) -> np.ndarray:
        from workbench.retrieval.encoders import token_lengths

        if batch_size < 1:
            raise RetrievalError(f"batch size must be at least 1 (got {batch_size})")
        total = len(texts)
        out = np.empty((total, self.dimension), dtype=np.float32)
        if total == 0:
            return out
        order = np.argsort(-token_lengths(self.model, texts), kind="stable")
        batches = [order[s : s + batch_size] for s in range(0, total, batch_size)]
        done = 0
        # A round of ``jobs`` batches runs at once; cancel and progress are checked between rounds.
        for r in range(0, len(batches), self.ov.jobs):
            if cancel_check is not None and cancel_check():
                raise OperationCancelled(f"encoding cancelled after {done} of {total} passages")
            rows = batches[r : r + self.ov.jobs]
            inputs = [self._features([texts[i] for i in b], self.document_prompt) for b in rows]
            for b, feats, hidden in zip(rows, inputs, self.ov.infer_many(inputs), strict=True):
                out[b] = _pool(hidden, feats["attention_mask"], self.mode)
                done += len(b)
            if progress_callback is not None:
                progress_callback(done, total)
        return out

    def encode_query(self, text: str) -> np.ndarray:
        feats = self._features([text], self.query_prompt)
        return _pool(self.ov.infer_one(feats), feats["attention_mask"], self.mode)[0]


def _threads_key(threads: int) -> int:
    return threads if threads > 0 else (os.cpu_count() or 1)


def _fresh_model(path: Path, kind: str) -> Any:
    """A private copy (int8 quantizes in place: the shared float32 model must stay as it is)."""
    from sentence_transformers import CrossEncoder, SentenceTransformer

    cls = SentenceTransformer if kind == "bi-encoder" else CrossEncoder
    model = cls(str(path), device="cpu", local_files_only=True)
    model.eval()
    return model


def load_encoder_backend(
    path: str | os.PathLike[str], backend: str, *, threads: int = 0, cpu: CpuInfo | None = None
) -> TorchEncoder | OpenVinoEncoder:
    """An encoder running ``backend``, cached per (path, backend, threads). Raises ``BackendUnavailable`` (with the
    reason) when the backend cannot run here."""
    from workbench.retrieval.encoders import load_encoder

    reason = backend_unavailable_reason(backend, cpu)
    if reason:
        raise BackendUnavailable(f"{backend}: {reason}")
    p = validate_model_dir(path)
    if backend in (TORCH_FP32, TORCH_BF16):  # the shared, cached model; nothing to convert
        return TorchEncoder(load_encoder(p), name=backend, precision="bfloat16" if backend == TORCH_BF16 else "float32")

    def load() -> Any:
        if backend == TORCH_INT8:
            model = _fresh_model(p, "bi-encoder")
            quantize_int8_(model[0].auto_model)
            return TorchEncoder(model, name=TORCH_INT8)
        return OpenVinoEncoder(load_encoder(p), threads=threads)

    return backends_cache.get_or_load(("bi-encoder", str(p), backend, _threads_key(threads)), load)[0]


# --- rerankers --------------------------------------------------------------------------------------------------


class OpenVinoReranker:
    """A cross-encoder's transformer run by OpenVINO, with the model's own activation on the logits.

    One query's candidates are sorted by length and split into one batch per throughput stream, so short
    passages are not padded to the longest and the streams work side by side.
    """

    name = OPENVINO_FP32

    def __init__(self, model: Any, *, threads: int = 0, max_length: int | None = None) -> None:
        self.model, self.max_length = model, max_length
        if len(list(model)) != 1 or type(model[0]).__name__ != "Transformer":
            raise BackendUnavailable("OpenVINO supports cross-encoders made of one Transformer module")
        example = _tensor_features(model.preprocess([("an example query", "an example passage")]))
        self.ov = _OpenVinoModel(model[0].auto_model, example, threads)

    def _features(self, pairs: list[tuple[str, str]]) -> dict[str, np.ndarray]:
        kwargs: dict[str, Any] = {}
        if self.max_length is not None:
            kwargs["processing_kwargs"] = {"text": {"max_length": self.max_length, "truncation": True}}
        return _numpy_inputs(_tensor_features(self.model.preprocess(pairs, **kwargs)), self.ov.input_names)

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        import torch

        if not passages:
            return np.empty(0, dtype=np.float32)
        order = np.argsort([-len(p) for p in passages], kind="stable")
        parts = [part for part in np.array_split(order, min(self.ov.jobs, len(passages))) if len(part)]
        inputs = [self._features([(query, passages[i]) for i in part]) for part in parts]
        logits = np.empty(len(passages), dtype=np.float32)
        outputs = self.ov.infer_many(inputs) if len(parts) > 1 else [self.ov.infer_one(inputs[0])]
        for part, out in zip(parts, outputs, strict=True):
            logits[part] = out.reshape(len(part), -1)[:, 0]
        activation = getattr(self.model, "activation_fn", None)
        if activation is None:
            return logits
        with torch.inference_mode():
            return activation(torch.from_numpy(logits)).numpy().astype(np.float32).reshape(len(passages))


def load_reranker_backend(
    path: str | os.PathLike[str],
    backend: str,
    *,
    threads: int = 0,
    max_length: int | None = None,
    batch_size: int = 32,
    cpu: CpuInfo | None = None,
) -> Any:
    """A reranker (``score(query, passages)``) running ``backend``, cached per (path, backend, threads, max_length).

    Its ``name`` attribute is the backend, for stage timings. Raises ``BackendUnavailable`` where it cannot run.
    """
    from workbench.retrieval.rerank import CrossEncoderReranker

    reason = backend_unavailable_reason(backend, cpu)
    if reason:
        raise BackendUnavailable(f"{backend}: {reason}")
    p = validate_model_dir(path)

    def load() -> Any:
        from workbench.retrieval.encoders import load_cross_encoder

        if backend == OPENVINO_FP32:
            return OpenVinoReranker(load_cross_encoder(p), threads=threads, max_length=max_length)
        model = load_cross_encoder(p)
        if backend == TORCH_INT8:
            model = _fresh_model(p, "cross-encoder")
            quantize_int8_(model[0].auto_model)
        precision = "bfloat16" if backend == TORCH_BF16 else "float32"
        reranker = CrossEncoderReranker(model, batch_size=batch_size, max_length=max_length, precision=precision)
        reranker.name = backend  # type: ignore[attr-defined]
        return reranker

    key = ("cross-encoder", str(p), backend, _threads_key(threads), max_length)
    return backends_cache.get_or_load(key, load)[0]


def clear_backends_cache() -> None:
    backends_cache.clear()

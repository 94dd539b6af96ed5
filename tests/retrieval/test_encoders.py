from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.retrieval import encoders
from workbench.retrieval.errors import OperationCancelled, RetrievalError

TEXTS = [
    "short",
    "a considerably longer passage about cell biology, proteins and the way they fold " * 3,
    "medium length text on brains",
    "",
    "x " * 400,  # longer than max_seq_length: truncated, not an error
]


@pytest.fixture(scope="module")
def model(tiny_encoder_path: Path):
    return encoders.load_encoder(tiny_encoder_path)


def test_load_encoder_is_cached_per_path(model, tiny_encoder_path: Path) -> None:
    assert encoders.load_encoder(tiny_encoder_path) is model
    assert encoders.load_encoder(str(tiny_encoder_path) + "/") is model


def test_dimension_and_max_seq_length(model, tiny_encoder_path: Path) -> None:
    info = encoders.describe_encoder(model, tiny_encoder_path)
    assert (info.dimension, info.max_seq_length) == (32, 128)
    assert info.path == str(tiny_encoder_path.resolve())


def test_encode_passages_shape_dtype_and_normalisation(model) -> None:
    vectors = encoders.encode_passages(model, TEXTS, batch_size=2)
    assert vectors.shape == (len(TEXTS), 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_encode_passages_restores_input_order_after_length_sort(model) -> None:
    vectors = encoders.encode_passages(model, TEXTS, batch_size=2)
    one_by_one = np.stack([encoders.encode_passages(model, [t], batch_size=1)[0] for t in TEXTS])
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-5)
    reference = model.encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(vectors, reference, atol=1e-5)


def test_encode_query_matches_passage_encoding(model) -> None:
    query = encoders.encode_query(model, "medium length text on brains")
    assert query.shape == (32,)
    np.testing.assert_allclose(query, encoders.encode_passages(model, [TEXTS[2]])[0], atol=1e-5)


def test_progress_callback_reports_every_batch(model) -> None:
    calls: list[tuple[int, int]] = []
    encoders.encode_passages(model, TEXTS, batch_size=2, progress_callback=lambda d, t: calls.append((d, t)))
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_cancel_between_batches(model) -> None:
    calls: list[int] = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 1  # let the first batch run

    with pytest.raises(OperationCancelled, match="after 2 of 5"):
        encoders.encode_passages(model, TEXTS, batch_size=2, cancel_check=cancel)


def test_empty_input_and_bad_batch_size(model) -> None:
    assert encoders.encode_passages(model, []).shape == (0, 32)
    with pytest.raises(RetrievalError, match="batch size"):
        encoders.encode_passages(model, TEXTS, batch_size=0)


def test_bfloat16_precision_stays_close_to_float32(model) -> None:
    full = encoders.encode_passages(model, TEXTS)
    half = encoders.encode_passages(model, TEXTS, precision="bfloat16")
    assert half.dtype == np.float32
    # bf16 keeps 8 mantissa bits; whether the CPU runs it natively (AMX/AVX512-BF16) or emulated changes the rounding
    # but not its size, so a cosine bound far below "equal" and far above "unrelated" holds everywhere.
    assert (full * half).sum(axis=1).min() > 0.99


@pytest.mark.parametrize("fast_bf16", [True, False])
def test_auto_precision_on_cpus_with_and_without_native_bf16(model, monkeypatch, fast_bf16: bool) -> None:
    """``auto`` is bfloat16 only where the CPU has native bf16; either way the embeddings match float32 closely."""
    monkeypatch.setattr(encoders, "cpu_has_fast_bf16", lambda: fast_bf16)
    assert encoders.resolve_precision(model, "auto") == ("bfloat16" if fast_bf16 else "float32")
    assert encoders.resolve_precision(model, "float32") == "float32"
    auto = encoders.encode_passages(model, TEXTS, precision="auto")
    full = encoders.encode_passages(model, TEXTS, precision="float32")
    assert auto.dtype == np.float32 and auto.shape == full.shape
    np.testing.assert_allclose(np.linalg.norm(auto, axis=1), 1.0, atol=1e-5)
    if fast_bf16:
        assert (full * auto).sum(axis=1).min() > 0.99  # the bf16 bound above
    else:
        np.testing.assert_allclose(auto, full, atol=1e-6)  # the same float32 computation, run twice
    with pytest.raises(RetrievalError, match="precision"):
        encoders.encode_passages(model, TEXTS, precision="fp8")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "not a directory"),
        (lambda p: p, "not a sentence-transformers or Hugging Face model"),
        (lambda p: (p / "adapter_config.json").write_text("{}") and p, "LoRA adapter"),
        (lambda p: (p / "config.json").write_text("{}") and p, "no model weights"),
    ],
)
def test_invalid_model_dir_errors(tmp_path: Path, setup, message: str) -> None:
    with pytest.raises(RetrievalError, match=message):
        encoders.load_encoder(setup(tmp_path))


def test_detect_model_kind(tiny_encoder_path: Path, tiny_cross_encoder_path: Path, tmp_path: Path) -> None:
    assert encoders.detect_model_kind(tiny_encoder_path) == "bi-encoder"
    assert encoders.detect_model_kind(tiny_cross_encoder_path) == "cross-encoder"
    assert encoders.detect_model_kind(encoders.base_model_path()) == "bi-encoder"
    # A plain Hugging Face classifier without sentence-transformers config is a cross-encoder too.
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert encoders.detect_model_kind(tmp_path) == "cross-encoder"


def test_loading_the_wrong_kind_is_an_error(tiny_encoder_path: Path, tiny_cross_encoder_path: Path) -> None:
    with pytest.raises(RetrievalError, match="cross-encoder, not a bi-encoder"):
        encoders.load_encoder(tiny_cross_encoder_path)
    with pytest.raises(RetrievalError, match="bi-encoder, not a cross-encoder"):
        encoders.load_cross_encoder(tiny_encoder_path)


def test_cross_encoder_is_cached(tiny_cross_encoder_path: Path) -> None:
    assert encoders.load_cross_encoder(tiny_cross_encoder_path) is encoders.load_cross_encoder(tiny_cross_encoder_path)


def test_model_fingerprint_is_stable_and_content_based(tiny_encoder_path: Path, tiny_cross_encoder_path: Path) -> None:
    first = encoders.model_fingerprint(tiny_encoder_path)
    assert first == encoders.model_fingerprint(tiny_encoder_path)
    assert len(first) == 64
    assert first != encoders.model_fingerprint(tiny_cross_encoder_path)

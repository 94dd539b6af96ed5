"""Inference backends: outputs close to float32, fidelity gates and refusals, automatic choice per CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.retrieval import backends as B
from workbench.retrieval.backend_measure import (
    BackendResult,
    DevList,
    Thresholds,
    choose_backend,
    encoder_fidelity,
    encoder_verdict,
    measure_backends,
    ndcg_at_10,
    reranker_fidelity,
    reranker_verdict,
)
from workbench.retrieval.errors import RetrievalError

AVX2 = B.CpuInfo("AMD EPYC", frozenset({"avx2", "fma", "avx"}))
AMX = B.CpuInfo("Intel Xeon Sapphire Rapids", frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"}))
OLD = B.CpuInfo("Old CPU", frozenset({"sse4_2"}))

TEXTS = [
    f"passage {i} on " + " ".join(["protein", "cells", "aspirin", "heart"][: i % 4 + 1]) * (i % 5 + 1)
    for i in range(24)
]
QUERIES = ["aspirin and the heart", "protein folding in cells"]

needs_openvino = pytest.mark.skipif(not B._openvino_importable(), reason="openvino not installed")
needs_int8 = pytest.mark.skipif(bool(B.backend_unavailable_reason(B.TORCH_INT8)), reason="no int8 kernels here")


def _cos_min(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sum(a * b, axis=1).min())


def test_available_backends_follow_the_cpu_flags() -> None:
    assert B.TORCH_BF16 not in B.available_backends(AVX2)
    assert "native bfloat16" in B.backend_unavailable_reason(B.TORCH_BF16, AVX2)
    assert B.TORCH_BF16 in B.available_backends(AMX)
    assert "AVX2" in B.backend_unavailable_reason(B.TORCH_INT8, OLD)
    assert B.default_backend(AVX2) == B.TORCH_FP32 and B.default_backend(AMX) == B.TORCH_BF16
    assert "unknown backend" in B.backend_unavailable_reason("onnx", AVX2)
    # The signature keeps only flags that change backend speed, so one report holds across identical CPUs.
    assert AMX.signature == "Intel Xeon Sapphire Rapids [avx2 fma avx512f avx512_bf16 amx_bf16]"


def test_an_unavailable_backend_is_refused_with_its_reason(tiny_encoder_path: Path) -> None:
    with pytest.raises(B.BackendUnavailable, match="native bfloat16"):
        B.load_encoder_backend(tiny_encoder_path, B.TORCH_BF16, cpu=AVX2)


@needs_int8
def test_torch_int8_quantizes_in_place_but_keeps_the_ffn_output(tiny_encoder_path: Path) -> None:
    import torch

    encoder = B.load_encoder_backend(tiny_encoder_path, B.TORCH_INT8)
    modules = dict(encoder.model[0].auto_model.named_modules())
    quantized = {n for n, m in modules.items() if type(m).__name__ == "Linear" and m.__module__.startswith("torch.ao")}
    assert "encoder.layer.0.attention.self.query" in quantized
    assert "encoder.layer.0.attention.output.dense" in quantized
    assert type(modules["encoder.layer.0.output.dense"]) is torch.nn.Linear  # kept in float32
    # The shared float32 model is untouched.
    fp32 = B.load_encoder_backend(tiny_encoder_path, B.TORCH_FP32)
    assert type(dict(fp32.model[0].auto_model.named_modules())["encoder.layer.0.attention.self.query"]) is (
        torch.nn.Linear
    )
    ref = fp32.encode_passages(TEXTS)
    got = encoder.encode_passages(TEXTS, batch_size=5)
    assert got.shape == ref.shape and got.dtype == np.float32
    assert _cos_min(ref, got) > 0.99  # int8 is close, not exact (tiny model: ~0.9999)


@needs_openvino
def test_openvino_encoder_matches_float32(tiny_encoder_path: Path) -> None:
    fp32 = B.load_encoder_backend(tiny_encoder_path, B.TORCH_FP32)
    ov = B.load_encoder_backend(tiny_encoder_path, B.OPENVINO_FP32, threads=1)
    assert ov is B.load_encoder_backend(tiny_encoder_path, B.OPENVINO_FP32, threads=1)  # cached per path + threads
    seen: list[tuple[int, int]] = []
    got = ov.encode_passages(TEXTS, batch_size=4, progress_callback=lambda d, t: seen.append((d, t)))
    assert _cos_min(fp32.encode_passages(TEXTS), got) > 0.9999
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert seen[-1] == (len(TEXTS), len(TEXTS))
    for q in QUERIES:
        assert float(np.dot(fp32.encode_query(q), ov.encode_query(q))) > 0.9999
    with pytest.raises(Exception, match="cancelled"):
        ov.encode_passages(TEXTS, cancel_check=lambda: True)


@needs_openvino
def test_openvino_and_int8_rerankers_match_float32(tiny_cross_encoder_path: Path) -> None:
    fp32 = B.load_reranker_backend(tiny_cross_encoder_path, B.TORCH_FP32, max_length=64)
    ref = fp32.score(QUERIES[0], TEXTS)
    ov = B.load_reranker_backend(tiny_cross_encoder_path, B.OPENVINO_FP32, threads=2, max_length=64)
    assert ov.name == B.OPENVINO_FP32
    np.testing.assert_allclose(ov.score(QUERIES[0], TEXTS), ref, atol=1e-4)
    assert ov.score(QUERIES[0], []).shape == (0,)
    if not B.backend_unavailable_reason(B.TORCH_INT8):
        int8 = B.load_reranker_backend(tiny_cross_encoder_path, B.TORCH_INT8, max_length=64)
        np.testing.assert_allclose(int8.score(QUERIES[0], TEXTS), ref, atol=0.02)


def _result(name: str, *, per_s: float | None = None, p95: float | None = None, passed: bool = True) -> BackendResult:
    return BackendResult(
        name, items_per_s=per_s, passed=passed, rerank_ms={"50": {"p50": p95, "p95": p95}} if p95 else {}
    )


def test_auto_choice_on_an_avx2_cpu_takes_the_fastest_that_passes() -> None:
    results = [
        _result(B.TORCH_FP32, per_s=20),
        _result(B.TORCH_INT8, per_s=29, passed=False),  # fastest but refused by the cosine gate
        _result(B.OPENVINO_FP32, per_s=30 * 0.99),
    ]
    assert choose_backend(results, kind="bi-encoder", cpu=AVX2)[0] == B.OPENVINO_FP32
    reranking = [_result(B.TORCH_FP32, p95=4000), _result(B.TORCH_INT8, p95=2500), _result(B.OPENVINO_FP32, p95=3000)]
    name, why = choose_backend(reranking, kind="cross-encoder", cpu=AVX2)
    assert name == B.TORCH_INT8 and "1.60x" in why


def test_auto_choice_on_a_bf16_cpu_never_gets_slower_than_todays_path() -> None:
    # OpenVINO barely faster than bf16 (within noise): bf16 stays. float32 is never "faster" than today by accident.
    close = [_result(B.TORCH_FP32, per_s=30), _result(B.TORCH_BF16, per_s=70), _result(B.OPENVINO_FP32, per_s=71)]
    assert choose_backend(close, kind="bi-encoder", cpu=AMX)[0] == B.TORCH_BF16
    # Even a bf16 that fails a gate stays today's default when nothing passing is faster.
    refused = [_result(B.TORCH_FP32, per_s=30), _result(B.TORCH_BF16, per_s=70, passed=False)]
    assert choose_backend(refused, kind="bi-encoder", cpu=AMX)[0] == B.TORCH_BF16
    faster = [_result(B.TORCH_BF16, per_s=70), _result(B.OPENVINO_FP32, per_s=90)]
    assert choose_backend(faster, kind="bi-encoder", cpu=AMX)[0] == B.OPENVINO_FP32


def test_verdicts_name_the_figure_and_the_threshold() -> None:
    ok, why = encoder_verdict({"cosine_mean": 0.992, "cosine_min": 0.988}, Thresholds())
    assert not ok and "min 0.9880" in why and "threshold 0.999" in why
    assert encoder_verdict({"cosine_mean": 1.0, "cosine_min": 0.9995}, Thresholds()) == (True, "")
    ok, why = reranker_verdict({"spearman_mean": 0.95, "ndcg10_delta": -0.012, "top10_overlap": 0.9}, Thresholds())
    assert not ok and "Spearman to float32 0.9500 is below 0.98" in why and "-0.0120" in why and "±0.005" in why
    ok, why = reranker_verdict({"spearman_mean": 0.99, "top10_overlap": 0.8}, Thresholds())
    assert not ok and "top-10 overlap" in why and "no judged dev lists" in why


class _Fixed:
    def __init__(self, scores: dict[str, float], flip: bool = False) -> None:
        self.scores, self.flip = scores, flip

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        s = np.array([self.scores[p] for p in passages])
        return -s if self.flip else s


def test_reranker_fidelity_against_a_ranking_that_disagrees() -> None:
    passages = [f"p{i}" for i in range(12)]
    scores = {p: float(12 - i) for i, p in enumerate(passages)}
    grades = [3, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    dev = [DevList("q", passages, grades)]
    same = reranker_fidelity(_Fixed(scores), _Fixed(scores), dev)
    assert same["spearman_mean"] == pytest.approx(1.0) and same["ndcg10_delta"] == pytest.approx(0.0)
    flipped = reranker_fidelity(_Fixed(scores), _Fixed(scores, flip=True), dev)
    assert flipped["spearman_mean"] == pytest.approx(-1.0) and flipped["ndcg10_delta"] < -0.3
    assert not reranker_verdict(flipped, Thresholds())[0]
    assert ndcg_at_10([3, 2, 1], [1, 0, 0]) == pytest.approx(1.0)
    with pytest.raises(RetrievalError):
        reranker_fidelity(_Fixed(scores), _Fixed(scores), [])


def test_encoder_fidelity_of_the_same_path_is_one(tiny_encoder_path: Path) -> None:
    fp32 = B.load_encoder_backend(tiny_encoder_path, B.TORCH_FP32)
    fid = encoder_fidelity(fp32, fp32, TEXTS[:5], QUERIES)
    assert fid["n"] == 7 and fid["cosine_min"] == pytest.approx(1.0, abs=1e-5)


@needs_int8
def test_measure_refuses_int8_for_index_building_when_the_gate_is_out_of_reach(tiny_encoder_path: Path) -> None:
    lines: list[str] = []
    report = measure_backends(
        "bi-encoder", str(tiny_encoder_path), passages=TEXTS, queries=QUERIES, backends=[B.TORCH_INT8],
        thresholds=Thresholds(encoder_cosine_min=1.0), batch_size=8, cpu=AVX2, log=lines.append,
    )  # fmt: skip
    rows = {r["name"]: r for r in report["backends"]}
    assert set(rows) == {B.TORCH_FP32, B.TORCH_INT8}
    assert rows[B.TORCH_FP32]["passed"] and rows[B.TORCH_FP32]["speedup"] == 1.0
    int8 = rows[B.TORCH_INT8]
    assert not int8["passed"] and "below the index-building threshold 1" in int8["refused_reason"]
    assert report["chosen"] == B.TORCH_FP32 and report["cpu"]["signature"] == AVX2.signature
    assert any("refused" in line for line in lines)


@needs_int8
def test_measure_a_reranker_reports_latency_per_size(tiny_cross_encoder_path: Path) -> None:
    dev = [DevList(q, TEXTS, [1 if "aspirin" in t else 0 for t in TEXTS]) for q in QUERIES]
    report = measure_backends(
        "cross-encoder", str(tiny_cross_encoder_path), dev_lists=dev, backends=[B.TORCH_INT8, B.TORCH_BF16],
        repeats=2, max_length=64, cpu=AVX2,
    )  # fmt: skip
    rows = {r["name"]: r for r in report["backends"]}
    assert set(rows[B.TORCH_INT8]["rerank_ms"]) == {"20", "50"}
    assert rows[B.TORCH_INT8]["fidelity"]["judged_lists"] == 2
    assert not rows[B.TORCH_BF16]["available"] and "native bfloat16" in rows[B.TORCH_BF16]["refused_reason"]
    assert report["chosen"] in (B.TORCH_FP32, B.TORCH_INT8)


@pytest.mark.parametrize(
    ("cap", "kept", "dropped"),
    [
        ("", {"avx2", "avx512f", "amx_bf16", "avx512_bf16"}, set()),
        ("AVX2", {"avx2", "fma"}, {"avx512f", "avx512_vnni", "amx_bf16", "avx512_bf16"}),
        ("avx512_core_vnni", {"avx2", "avx512f", "avx512_vnni"}, {"amx_bf16", "avx512_bf16", "amx_tile"}),
        ("AVX512_CORE_BF16", {"avx512f", "avx512_bf16", "amx_bf16"}, set()),
    ],
)
def test_a_onednn_isa_cap_hides_the_flags_above_it(monkeypatch, cap, kept, dropped) -> None:  # type: ignore[no-untyped-def]
    from workbench.retrieval.encoders import isa_capped_flags

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    every = {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile"}
    flags = isa_capped_flags(every)
    assert kept <= flags and not dropped & flags
    native = B.CpuInfo(model="x", flags=flags).native_bf16
    assert native is ("amx_bf16" in flags)  # an AVX2 cap means float32 is today's default, as on an AVX2 CPU

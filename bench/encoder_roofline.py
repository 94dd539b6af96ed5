"""Benchmark: how close float32 passage encoding already is to this CPU's float32 matrix-multiply peak.

Issue 13 asks for index-build embedding >= 2x plain sentence-transformers float32 at cosine >= 0.999. Every float32
backend computes the same arithmetic, so none can beat the CPU's float32 GEMM rate; if the encoder already runs at
more than half of it, a 2x float32 speedup is impossible and only lower precision (int8, bf16) is left. This measures:
- the model's useful FLOPs per passage from its config and the real (unpadded) token counts of SciFact abstracts at
  256 tokens: per layer 2 * L * (4 h^2 + 2 h i) for the projections and 2 * 2 * L^2 * h for attention;
- the float32 GEMM peak here (``torch.mm`` on the encoder's own shapes and on a square 2048 matrix, and an OpenVINO
  MatMul, best of 5);
- passages/s and achieved GFLOP/s of plain ``SentenceTransformer.encode`` and of each float32 backend available
  (``workbench.retrieval.backends``), and the bound ``peak / achieved`` on any float32 speedup.

Run: .venv/bin/python bench/encoder_roofline.py  (THREADS 2, ENC_PASSAGES 256; ISA caps such as
ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 are recorded in the machine block;
OpenVINO ignores them, so a capped run leaves its rows out and its MatMul out of the peak).
JSON to bench/results/encoder_roofline.json.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from bench._scifact import load_corpus, write_result  # noqa: E402
from workbench.retrieval.backends import available_backends, load_encoder_backend  # noqa: E402
from workbench.retrieval.encoders import base_model_path, load_encoder  # noqa: E402

THREADS = int(os.environ.get("THREADS", "2"))
MAX_TOKENS = 256
BATCH = 32
FP32_BACKENDS = ("torch-fp32", "openvino-fp32")


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def best_seconds(fn, repeats: int = 5) -> float:  # type: ignore[no-untyped-def]
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def gemm_peak() -> dict[str, float]:
    """GFLOP/s of float32 ``torch.mm`` on the encoder's projection shapes (a batch of 32 x 256 tokens) and a square."""
    shapes = {"tokens_x_h_x_4h": (BATCH * MAX_TOKENS, 384, 1536), "tokens_x_h_x_h": (BATCH * MAX_TOKENS, 384, 384)}
    shapes["square_2048"] = (2048, 2048, 2048)
    out = {}
    for name, (m, k, n) in shapes.items():
        a, b = torch.randn(m, k), torch.randn(k, n)
        secs = best_seconds(lambda a=a, b=b: torch.mm(a, b))
        out[name] = round(2 * m * k * n / secs / 1e9, 1)
    return out


def openvino_gemm_peak() -> float | None:
    """GFLOP/s of a float32 MatMul compiled by OpenVINO on the largest projection shape (None without openvino).
    MKL, behind ``torch.mm``, does not use AVX-512 on AMD CPUs while OpenVINO's kernels do, so the CPU's peak is the
    larger of the two; OpenVINO also ignores the ISA caps above (its rows under a cap are not AVX2 figures)."""
    try:
        import numpy as np
        import openvino as ov
        import openvino.opset13 as ops
    except ImportError:
        return None
    m, k, n = BATCH * MAX_TOKENS, 384, 1536
    a = ops.parameter([m, k], ov.Type.f32)
    model = ov.Model([ops.matmul(a, ops.constant(np.random.randn(k, n).astype(np.float32)), False, False)], [a])
    config = {"INFERENCE_NUM_THREADS": THREADS, "INFERENCE_PRECISION_HINT": "f32"}
    request = ov.Core().compile_model(model, "CPU", config).create_infer_request()
    x = np.random.randn(m, k).astype(np.float32)
    return round(2 * m * k * n / best_seconds(lambda: request.infer({0: x})) / 1e9, 1)


def useful_flops(lengths: list[int], config) -> float:  # type: ignore[no-untyped-def]
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_layer = sum(2 * n * (4 * h * h + 2 * h * i) + 4 * n * n * h for n in lengths)
    return float(per_layer * layers)


def main() -> None:
    torch.set_num_threads(THREADS)
    base = base_model_path()
    _, texts = load_corpus()
    sample = random.Random(0).sample(list(texts), int(os.environ.get("ENC_PASSAGES", 256)))
    plain = load_encoder(base)
    plain.max_seq_length = MAX_TOKENS
    tokenizer = plain.tokenizer
    lengths = [len(ids) for ids in tokenizer(sample, truncation=True, max_length=MAX_TOKENS)["input_ids"]]
    flops = useful_flops(lengths, plain[0].auto_model.config)
    log(f"{len(sample)} passages, mean {sum(lengths) / len(lengths):.0f} tokens, {flops / 1e9:.1f} GFLOP in all")
    peak = gemm_peak()
    ov_peak = openvino_gemm_peak()
    capped = bool(machine_info().get("isa_limits"))
    log(f"float32 GEMM peak (GFLOP/s): {peak}, OpenVINO MatMul {ov_peak}{' (ignores the ISA cap)' if capped else ''}")
    # under an ISA cap only kernels that honour it say what the capped CPU could do
    top = max([*peak.values(), *([ov_peak] if ov_peak and not capped else [])])
    if ov_peak is not None:
        peak["openvino_tokens_x_h_x_4h"] = ov_peak
    rows: dict[str, dict] = {}

    def row(secs: float) -> dict:
        achieved = flops / secs / 1e9
        return {
            "passages_per_s": round(len(sample) / secs, 1),
            "achieved_gflops": round(achieved, 1),
            "share_of_gemm_peak": round(achieved / top, 3),
            "float32_speedup_bound": round(top / achieved, 2),
        }

    with torch.inference_mode():
        rows["sentence-transformers"] = row(
            best_seconds(lambda: plain.encode(sample, batch_size=BATCH, convert_to_numpy=True), repeats=2)
        )
    log(f"plain sentence-transformers: {rows['sentence-transformers']}")
    for name in (b for b in available_backends() if b in FP32_BACKENDS and not (capped and b.startswith("openvino"))):
        encoder = load_encoder_backend(base, name, threads=THREADS)
        rows[name] = row(best_seconds(lambda e=encoder: e.encode_passages(sample, batch_size=BATCH), repeats=2))
        log(f"{name}: {rows[name]}")
    best = max(rows.values(), key=lambda r: r["passages_per_s"])
    write_result(
        "encoder_roofline",
        {
            "benchmark": "encoder_roofline",
            "machine": machine_info(),
            "threads": THREADS,
            "passages": len(sample),
            "max_tokens": MAX_TOKENS,
            "mean_tokens": round(sum(lengths) / len(lengths), 1),
            "useful_gflop_per_passage": round(flops / len(sample) / 1e9, 3),
            "gemm_peak_gflops": peak,
            "peak_used_gflops": top,
            "encoders": rows,
            "float32_2x_possible": bool(top / rows["sentence-transformers"]["achieved_gflops"] >= 2),
            "best_float32_vs_plain": round(best["passages_per_s"] / rows["sentence-transformers"]["passages_per_s"], 2),
        },
    )


if __name__ == "__main__":
    main()

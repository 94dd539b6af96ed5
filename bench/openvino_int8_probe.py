"""Probe: does OpenVINO static int8 (NNCF post-training quantization) keep the encoder's fidelity?

The index-build target asks ≥ 2× plain float32 encode at cosine ≥ 0.999 on AVX2 CPUs. Float32 backends reach
1.2–1.3× there and dynamic int8 (torch, ONNX Runtime) loses fidelity (cosine 0.993 / 0.925). This measures NNCF's
static quantization of the MiniLM encoder, calibrated on SciFact passages (never the ones measured), in its variants:
the transformer preset (SmoothQuant, fp32 softmax/layer norms), with the feed-forward output projections left in
float32 (what keeps torch-int8 closest), and weights-only int8. Per variant: cosine to float32 on held-out passages
(mean, 5th percentile, minimum) and passages/s on this CPU (int8 speed depends on VNNI/AMX: only the fidelity carries
over to other CPUs).

Needs ``nncf``, not a requirement of the app: ``pip install --no-deps nncf==3.4.0 pydot pyparsing tabulate`` (without
``--no-deps`` it brings the ``ninja`` build tool, whose package shadows django-ninja's ``ninja`` and breaks the API).
Env: CALIBRATION (300), MEASURE (512).
Run: .venv/bin/python bench/openvino_int8_probe.py   (writes bench/results/openvino_int8_probe.json)
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from bench._scifact import load_corpus, write_result  # noqa: E402
from workbench.retrieval.backends import _pool, _tensor_features  # noqa: E402
from workbench.retrieval.encoders import base_model_path, encode_passages, load_encoder  # noqa: E402

CALIBRATION = int(os.environ.get("CALIBRATION", 300))
MEASURE = int(os.environ.get("MEASURE", 512))
BATCH = 32


def batches(model, texts: list[str]) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:  # type: ignore[no-untyped-def]
    """Longest first, ``BATCH`` at a time, as the app's encoders batch; the order to put rows back."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = []
    for s in range(0, len(texts), BATCH):
        feats = _tensor_features(model.preprocess([texts[i] for i in order[s : s + BATCH]]))
        out.append({k: v.numpy() for k, v in feats.items() if k in ("input_ids", "attention_mask", "token_type_ids")})
    return out, order


def encode(compiled, feeds: list[dict[str, np.ndarray]], order: np.ndarray) -> tuple[np.ndarray, float]:  # type: ignore[no-untyped-def]
    rows, t0 = [], time.perf_counter()
    for f in feeds:
        hidden = np.asarray(compiled(f)[0])
        rows.append(_pool(hidden, f["attention_mask"], "mean"))
    seconds = time.perf_counter() - t0
    vectors = np.empty((len(order), rows[0].shape[1]), dtype=np.float32)
    vectors[order] = np.concatenate(rows)
    return vectors, seconds


def main() -> None:
    import nncf
    import openvino as ov

    threads = torch.get_num_threads()
    model = load_encoder(base_model_path())
    _, texts = load_corpus()
    rng = np.random.default_rng(0)
    picked = rng.permutation(len(texts))
    calibration = [texts[i] for i in picked[:CALIBRATION]]
    measured = [texts[i] for i in picked[CALIBRATION : CALIBRATION + MEASURE]]
    reference = encode_passages(model, measured, batch_size=BATCH)
    t0 = time.perf_counter()
    encode_passages(model, measured, batch_size=BATCH)
    torch_seconds = time.perf_counter() - t0

    example = _tensor_features(model.preprocess(["an example passage to trace the model with"]))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fp32 = ov.convert_model(model[0].auto_model, example_input=example)
    calib_feeds, _ = batches(model, calibration)
    feeds, order = batches(model, measured)
    dataset = nncf.Dataset(calib_feeds)
    # Traced names: __module.encoder.layer.N.output.dense (feed-forward out), ...layer.N.attention.output.dense.
    ffn_out = nncf.IgnoredScope(patterns=[r".*layer\.\d+\.output\.dense.*"], validate=False)
    both_out = nncf.IgnoredScope(patterns=[r".*output\.dense.*"], validate=False)

    def static(**kw):  # type: ignore[no-untyped-def]
        return nncf.quantize(
            fp32.clone(), dataset, model_type=nncf.ModelType.TRANSFORMER, subset_size=len(calib_feeds), **kw
        )

    def weights(mode):  # type: ignore[no-untyped-def]
        return nncf.compress_weights(fp32.clone(), mode=mode)

    variants = {
        "fp32": lambda: fp32,
        "int8 transformer preset": lambda: static(),
        "int8 transformer preset, FFN output fp32": lambda: static(ignored_scope=ffn_out),
        "int8 mixed preset, no SmoothQuant": lambda: static(
            preset=nncf.QuantizationPreset.MIXED,
            advanced_parameters=nncf.AdvancedQuantizationParameters(smooth_quant_alpha=-1),
        ),
        "int8 transformer preset, FFN and attention outputs fp32, full bias correction": lambda: static(
            ignored_scope=both_out, fast_bias_correction=False
        ),
        "int8 transformer preset, FFN and attention outputs fp32": lambda: static(ignored_scope=both_out),
        "int8 weights only, symmetric": lambda: weights(nncf.CompressWeightsMode.INT8_SYM),
        "int8 weights only": lambda: weights(nncf.CompressWeightsMode.INT8_ASYM),
    }
    core = ov.Core()
    results = {}
    for name, make in variants.items():
        t0 = time.perf_counter()
        try:
            quantized = make()
        except Exception as exc:  # a variant this NNCF cannot build is reported, not fatal
            results[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            continue
        prepare = time.perf_counter() - t0
        compiled = core.compile_model(
            quantized, "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
        )
        compiled(feeds[0])  # warm-up
        vectors, seconds = encode(compiled, feeds, order)
        cosine = (vectors * reference).sum(axis=1)
        results[name] = {
            "cosine_mean": round(float(cosine.mean()), 5),
            "cosine_p5": round(float(np.percentile(cosine, 5)), 5),
            "cosine_min": round(float(cosine.min()), 5),
            "passages_per_s": round(len(measured) / seconds, 1),
            "vs_torch_fp32": round(torch_seconds / seconds, 2),
            "prepare_seconds": round(prepare, 1),
        }
        print(name, results[name], flush=True)
    write_result(
        "openvino_int8_probe",
        {
            "benchmark": "openvino_int8_probe",
            "machine": machine_info(),
            "nncf": nncf.__version__,
            "openvino": ov.__version__,
            "calibration_passages": len(calibration),
            "measured_passages": len(measured),
            "torch_fp32_passages_per_s": round(len(measured) / torch_seconds, 1),
            "gate": "cosine >= 0.999 to float32 (BACKEND_ENCODER_COSINE_MIN)",
            "variants": results,
        },
    )


if __name__ == "__main__":
    main()

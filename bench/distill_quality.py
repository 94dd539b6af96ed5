"""Benchmark: a reranker teacher and its distilled student, trained through the app on SciFact's *train* labels.

The app's path (as ``bench/scifact_quality.py``): SciFact imported into a throwaway database, an ``imported``
snapshot (test held out by its tag, dev carved from train), then ``train_cross_encoder`` (the teacher: MiniLM with a
fresh head, the default recipe) and ``train_distilled_reranker`` (the student: the default recipe, first layers of
the teacher at a shorter length) with the base bi-encoder as first stage, mining from the base's stored vectors.
Records both models' dev figures side by side and where they were saved; ``bench/cpu_speed.py`` then measures them
on the test queries (``TEACHER=... STUDENT=...``). Nothing is tuned on test.

Run: .venv/bin/python bench/distill_quality.py   (writes bench/results/distill_quality.json)
Env: CE_EPOCHS (1), CE_BUDGET_S (900), DISTILL_EPOCHS (2), DISTILL_BUDGET_S (600), TEACHER (skip training one: the
path of a trained reranker), STUDENT_LAYERS / STUDENT_MAX_LENGTH / LAYER_PICK (the student's shape), DISTILL_LOSS,
CANDIDATES (per train query; recipe defaults),
BENCH_RESULT_NAME (another result file name), MINING_CACHE (a mining and teacher-score cache shared between runs).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="bench-distill-"))
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

import django  # noqa: E402

django.setup()

import torch  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from bench._scifact import corpus_embeddings, load_corpus, write_result  # noqa: E402
from bench._training import result_summary, scifact_snapshot, served_vectors  # noqa: E402
from training.ml.config import CrossEncoderConfig, DistillConfig  # noqa: E402
from training.ml.distill import train_distilled_reranker  # noqa: E402
from training.ml.train import TrainingHooks, TrainResult, train_cross_encoder  # noqa: E402
from workbench.retrieval.encoders import base_model_path, cpu_has_fast_bf16  # noqa: E402

OUT = Path(os.environ.get("BENCH_OUT", ROOT / "bench" / ".cache" / "distill"))


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def summary(r: TrainResult, wall: float) -> dict:
    return {**result_summary(r), "wall_seconds_incl_mining": round(wall)}


def main() -> None:
    started = time.perf_counter()
    torch.set_num_threads(2)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    work = OUT / stamp
    work.mkdir(parents=True, exist_ok=True)
    setup = scifact_snapshot(stamp, log)
    base = base_model_path()
    doc_ids, texts = load_corpus()
    known = served_vectors([str(d) for d in doc_ids.tolist()], texts, corpus_embeddings(), setup.collection)
    hooks = TrainingHooks(on_log=log, on_loss=lambda s, v: log(f"    step {s} loss {v:.4f}"))
    hooks.on_eval = lambda step, m: log(
        f"    dev at step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in m.items() if "ndcg@10" in k)
    )
    # One mining cache for both runs: they mine with the same first stage, so the student's mining reuses the
    # embeddings of the documents the stored vectors lack instead of computing them again.
    common = {
        "data": setup.data,
        "corpus": setup.collection,
        "hooks": hooks,
        "mining_vectors": known,
        "mining_cache_dir": Path(os.environ.get("MINING_CACHE", work / "mining-cache")),
    }
    result: dict = {
        "benchmark": "distill_quality",
        "machine": {**machine_info(), "bf16_native": cpu_has_fast_bf16()},
        "snapshot": {"hash": setup.data.content_hash, "queries_by_split": setup.counts},
    }
    teacher_path = os.environ.get("TEACHER")
    if not teacher_path:
        ce_config = CrossEncoderConfig(
            epochs=float(os.environ.get("CE_EPOCHS", 1)), max_train_seconds=float(os.environ.get("CE_BUDGET_S", 900))
        )
        t0 = time.perf_counter()
        teacher = train_cross_encoder(
            config=ce_config, base_path=base, first_stage_path=base, output_dir=work / "teacher", **common
        )
        log(f"teacher: {teacher.verdict}")
        result["teacher"] = {"recipe": ce_config.as_dict(), **summary(teacher, time.perf_counter() - t0)}
        teacher_path = str(teacher.artifact_path)
    mining = DistillConfig().mining
    d_config = DistillConfig(
        epochs=float(os.environ.get("DISTILL_EPOCHS", DistillConfig.epochs)),
        max_train_seconds=float(os.environ.get("DISTILL_BUDGET_S", 600)),
        student_layers=int(os.environ.get("STUDENT_LAYERS", DistillConfig.student_layers)),
        max_seq_length=int(os.environ.get("STUDENT_MAX_LENGTH", DistillConfig.max_seq_length)),
        layer_pick=os.environ.get("LAYER_PICK", DistillConfig.layer_pick),
        loss=os.environ.get("DISTILL_LOSS", DistillConfig.loss),
        mining=replace(mining, num_negatives=int(os.environ.get("CANDIDATES", mining.num_negatives))),
    )
    t0 = time.perf_counter()
    student = train_distilled_reranker(
        config=d_config, teacher_path=teacher_path, first_stage_path=base, output_dir=work / "student", **common
    )
    log(f"student: {student.verdict}")
    result["student"] = {
        "recipe": d_config.as_dict(),
        "teacher": teacher_path,
        "teacher_dev": student.teacher_dev,
        "first_stage_dev": student.first_stage_dev,
        "delta_points": student.delta_points,
        "speed": student.speed,
        **summary(student, time.perf_counter() - t0),
    }
    result["total_seconds"] = round(time.perf_counter() - started)
    write_result("distill_quality", result)


if __name__ == "__main__":
    main()

"""Benchmark: seconds per training step in float32 and in bf16 mixed precision (what ``training.ml.train`` picks on
CPUs with native bf16), for the two trainers the app uses on MiniLM.

- reranker: ``CrossEncoderTrainer``, binary cross-entropy, batch 16 (query, abstract) pairs at 256 tokens;
- bi-encoder: ``SentenceTransformerTrainer``, MultipleNegativesRankingLoss, batch 16 (claim, abstract) pairs.

SciFact train claims and abstracts; ``STEPS`` (20) steps per run after 3 warm-up steps, the precisions alternated over
``ROUNDS`` (2) rounds so neither profits from running second. Only the speed is measured here: the quality of a bf16-
trained model is what the training benchmarks measure. On a CPU without native bf16 the app trains in float32 and
this reports that bf16 is not offered.

Run: .venv/bin/python bench/train_precision.py   (writes bench/results/train_precision.json)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from bench._scifact import scifact_dir, write_result  # noqa: E402
from training.ml.train import mixed_precision  # noqa: E402
from workbench.retrieval.encoders import base_model_path  # noqa: E402

STEPS = int(os.environ.get("STEPS", 20))
ROUNDS = int(os.environ.get("ROUNDS", 2))
WARMUP = 3
BATCH = 16


def pairs() -> tuple[list[str], list[str]]:
    folder = scifact_dir()
    docs = {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            docs[row["_id"]] = f"{row.get('title', '')} {row['text']}".strip()
    with open(folder / "queries.jsonl", encoding="utf-8") as fh:
        queries = {row["_id"]: row["text"] for row in map(json.loads, fh)}
    qs, ps = [], []
    with open(folder / "qrels" / "train.tsv", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            qid, did, _ = line.rstrip("\n").split("\t")
            if qid in queries and did in docs:
                qs.append(queries[qid])
                ps.append(docs[did])
    n = BATCH * (STEPS + WARMUP)
    return qs[:n], ps[:n]


class _StepTimes:
    def __init__(self) -> None:
        from transformers import TrainerCallback

        times: list[float] = []
        self.times = times

        class Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
                times.append(time.perf_counter())

        self.callback = Callback()

    def per_step(self) -> float:
        t = np.diff(self.times[WARMUP:])
        return float(np.median(t))


def run(kind: str, bf16: bool, queries: list[str], passages: list[str]) -> float:
    from datasets import Dataset

    torch.manual_seed(0)
    timer = _StepTimes()
    with tempfile.TemporaryDirectory() as scratch:
        common = dict(
            output_dir=scratch, max_steps=STEPS + WARMUP, per_device_train_batch_size=BATCH, learning_rate=5e-5,
            report_to="none", disable_tqdm=True, use_cpu=True, bf16=bf16, save_strategy="no", logging_steps=50,
        )  # fmt: skip
        if kind == "reranker":
            from sentence_transformers import CrossEncoder
            from sentence_transformers.cross_encoder import (
                CrossEncoderTrainer,
                CrossEncoderTrainingArguments,
                losses,
            )

            model = CrossEncoder(str(base_model_path()), num_labels=1, max_length=256, local_files_only=True)
            labels = [float(i % 8 == 0) for i in range(len(queries))]
            data = Dataset.from_dict({"query": queries, "passage": passages, "label": labels})
            trainer = CrossEncoderTrainer(
                model=model, args=CrossEncoderTrainingArguments(**common), train_dataset=data,
                loss=losses.BinaryCrossEntropyLoss(model), callbacks=[timer.callback],
            )  # fmt: skip
        else:
            from sentence_transformers import (
                SentenceTransformer,
                SentenceTransformerTrainer,
                SentenceTransformerTrainingArguments,
                losses,
            )

            model = SentenceTransformer(str(base_model_path()), local_files_only=True)
            data = Dataset.from_dict({"anchor": queries, "positive": passages})
            trainer = SentenceTransformerTrainer(
                model=model, args=SentenceTransformerTrainingArguments(**common), train_dataset=data,
                loss=losses.MultipleNegativesRankingLoss(model), callbacks=[timer.callback],
            )  # fmt: skip
        trainer.train()
    return timer.per_step()


def main() -> None:
    started = time.perf_counter()
    queries, passages = pairs()
    chosen = mixed_precision()
    precisions = [False, True] if chosen == "bf16" else [False]
    figures: dict[str, dict[str, list[float]]] = {}
    for kind in ("reranker", "bi-encoder"):
        figures[kind] = {"fp32": [], "bf16": []}
        for r in range(ROUNDS):
            for bf16 in precisions if r % 2 == 0 else precisions[::-1]:
                seconds = run(kind, bf16, queries, passages)
                figures[kind]["bf16" if bf16 else "fp32"].append(round(seconds, 3))
                print(kind, "bf16" if bf16 else "fp32", round(seconds, 3), "s/step", flush=True)
    summary = {
        kind: {
            "fp32_s_per_step": float(np.median(f["fp32"])),
            **(
                {
                    "bf16_s_per_step": float(np.median(f["bf16"])),
                    "speedup": round(float(np.median(f["fp32"]) / np.median(f["bf16"])), 2),
                }
                if f["bf16"]
                else {}
            ),
            "runs": f,
        }
        for kind, f in figures.items()
    }
    write_result(
        "train_precision",
        {
            "benchmark": "train_precision",
            "machine": machine_info(),
            "app_choice": chosen,
            "batch": BATCH,
            "steps_timed": STEPS,
            "rounds": ROUNDS,
            "results": summary,
            "total_seconds": round(time.perf_counter() - started, 1),
        },
    )


if __name__ == "__main__":
    main()

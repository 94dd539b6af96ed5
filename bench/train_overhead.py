"""Benchmark: steps per second of the app's training path vs the bare sentence-transformers trainer, same data.

App path: ``training.ml.train.train_bi_encoder`` with the hooks the Celery task uses (``training.services._Hooks``:
loss into JobMetric rows, progress + ETA + cancellation checks into the Job row of a throwaway SQLite database).
Bare: ``SentenceTransformerTrainer`` with the same model, rows, loss, batch sampler, seed and arguments, no callback.
No dev split (so no evaluation) and no mined negatives: only the per-step cost is compared. Runs alternate
(app, bare, app, bare, ...) so a change in machine load hits both alike; the median of each is reported.

Run: .venv/bin/python bench/train_overhead.py   (env: STEPS=8, REPEATS=2, SEQ=64, BATCH=16)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="bench-overhead-"))
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from bench._scifact import load_corpus, load_qrels, load_queries, write_result  # noqa: E402
from training.ml.config import BiEncoderConfig, MiningSettings  # noqa: E402
from training.ml.data import SnapshotData  # noqa: E402
from training.ml.datasets import prepare  # noqa: E402
from training.ml.train import train_bi_encoder  # noqa: E402
from training.services import _Hooks  # noqa: E402
from workbench.jobs import JobReporter  # noqa: E402
from workbench.models import Job, Project  # noqa: E402
from workbench.retrieval.encoders import base_model_path  # noqa: E402

STEPS = int(os.environ.get("STEPS", 8))
REPEATS = int(os.environ.get("REPEATS", 2))
SEQ = int(os.environ.get("SEQ", 64))
BATCH = int(os.environ.get("BATCH", 16))


def snapshot() -> SnapshotData:
    qrels = load_qrels("train")
    qids = sorted(qrels, key=int)[: STEPS * BATCH + BATCH]
    queries = load_queries()
    ids, texts = load_corpus()
    text_of = dict(zip([str(i) for i in ids.tolist()], texts, strict=True))
    docs = {d for q in qids for d in qrels[q]}
    return SnapshotData(
        content_hash="overhead",
        queries={q: queries[q] for q in qids},
        splits=dict.fromkeys(qids, "train"),
        qrels={q: qrels[q] for q in qids},
        passages={d: [(int(d), text_of[d])] for d in docs},
    )


def app_run(data: SnapshotData, config: BiEncoderConfig, out: Path) -> float:
    project, _ = Project.objects.get_or_create(slug="overhead", defaults={"name": "overhead"})
    job = Job.objects.create(project=project, kind="training_run", title="overhead", status="running")
    result = train_bi_encoder(
        data, config, base_path=base_model_path(), output_dir=out, hooks=_Hooks(JobReporter(job)).as_hooks()
    )
    return result.steps / result.train_seconds


def bare_run(data: SnapshotData, config: BiEncoderConfig, out: Path) -> float:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer import losses
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from transformers import set_seed

    set_seed(config.seed)
    prepared = prepare(data)
    rows = {
        "anchor": [t for _, t, _ in prepared.train_pairs],
        "positive": [prepared.corpus[d] for *_, d in prepared.train_pairs],
    }
    model = SentenceTransformer(str(base_model_path()), device="cpu", local_files_only=True)
    model.max_seq_length = config.max_seq_length
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out), max_steps=STEPS, per_device_train_batch_size=BATCH, learning_rate=config.learning_rate,
        warmup_steps=round(config.warmup_ratio * STEPS), weight_decay=config.weight_decay, seed=config.seed,
        data_seed=config.seed, batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", report_to="none",
        disable_tqdm=True, logging_steps=max(1, min(10, STEPS // 8 or 1)), use_cpu=True,
    )  # fmt: skip
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=Dataset.from_dict(rows), loss=losses.MultipleNegativesRankingLoss(model)
    )
    output = trainer.train()
    return trainer.state.global_step / output.metrics["train_runtime"]


def main() -> None:
    call_command("migrate", verbosity=0)
    data = snapshot()
    config = BiEncoderConfig(
        max_steps=STEPS, batch_size=BATCH, max_seq_length=SEQ, mining=MiningSettings(num_negatives=0)
    )
    app, bare = [], []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(REPEATS):
            app.append(app_run(data, config, Path(tmp) / f"app{i}"))
            bare.append(bare_run(data, config, Path(tmp) / f"bare{i}"))
            print(f"repeat {i}: app {app[-1]:.3f} steps/s, bare {bare[-1]:.3f} steps/s", flush=True)
    a, b = statistics.median(app), statistics.median(bare)
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    write_result(
        "train_overhead",
        {
            "benchmark": "train_overhead",
            "machine": machine_info(),
            "load_average_at_end": load,
            "model": "all-MiniLM-L6-v2",
            "setup": {"steps": STEPS, "repeats": REPEATS, "batch_size": BATCH, "max_seq_length": SEQ, "loss": "MNRL"},
            "app_steps_per_s": [round(x, 4) for x in app],
            "bare_steps_per_s": [round(x, 4) for x in bare],
            "app_median_steps_per_s": round(a, 4),
            "bare_median_steps_per_s": round(b, 4),
            "app_slower_by_percent": round(100 * (b - a) / b, 1),
            "target": "app path at most 5 % slower",
            "total_seconds": round(time.perf_counter() - started),
        },
    )


if __name__ == "__main__":
    main()

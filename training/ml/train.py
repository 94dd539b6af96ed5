"""Bi-encoder and cross-encoder (reranker) training from a snapshot, with the libraries' trainers.

``train_bi_encoder`` / ``train_cross_encoder`` take ``SnapshotData`` and a config dataclass and return a
``TrainResult`` (artifact path and metrics). They use ``SentenceTransformerTrainer`` / ``CrossEncoderTrainer``,
select the best checkpoint on the dev split (evaluated before training too, so the base's dev score is known), and
write the artifact atomically with a manifest and a model card. A run whose best dev score does not beat its base says
so (``improved`` False); pass ``keep_if_not_improved=False`` to write no artifact then. CUDA is used when available,
the CPU otherwise: the same code path.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from training.ml.card import library_versions, write_card
from training.ml.config import BiEncoderConfig, CrossEncoderConfig, MiningSettings, TrainingInputError
from training.ml.data import SnapshotData
from training.ml.datasets import DocumentVectors, PreparedData, dev_corpus, mine, prepare, random_negative
from workbench.retrieval.artifacts import atomic_directory, make_manifest, write_manifest
from workbench.retrieval.blend import BlendChoice
from workbench.retrieval.encoders import model_fingerprint

DEV_RERANK_DEPTH = 20  # a reranker's dev set: each dev query's first-stage top 20
# hard candidates per dev query (besides its positives) in the dev corpus: the base's true top DEV_RERANK_DEPTH, so
# its order over the dev corpus starts as it would over the whole collection
DEV_CANDIDATES = DEV_RERANK_DEPTH
CE_EVALUATIONS = 2  # a reranker dev pass scores every dev pair with the model: evaluate less often
MIN_GAIN = 1e-4  # a dev score must beat the base by more than this to count as an improvement
OVERFIT_DROP = 0.005  # dev falling this much below its best while the loss keeps dropping is a warning


@dataclass
class TrainingHooks:
    """Plain callables the caller (a Celery task, a notebook) uses to watch and stop a run.

    Any of them may raise to abort the run (a cancelled job); nothing is written then."""

    on_loss: Callable[[int, float], None] | None = None  # (step, training loss)
    on_eval: Callable[[int, dict[str, float]], None] | None = None  # (step, dev metrics)
    on_progress: Callable[[int, int, str], None] | None = None  # (step, total steps, message)
    on_log: Callable[[str], None] | None = None


@dataclass
class TrainResult:
    artifact_path: Path | None
    improved: bool | None  # None: no dev split to tell
    dev_metric: str
    base_dev: float | None
    best_dev: float | None
    steps: int
    train_seconds: float
    total_seconds: float
    loss_history: list[tuple[int, float]] = field(default_factory=list)
    dev_history: list[tuple[int, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    model: Any = field(default=None, repr=False)  # the selected model, in memory
    blend: BlendChoice | None = None  # a reranker's weight against the first stage, chosen on dev

    @property
    def verdict(self) -> str:
        if self.improved is None:
            return "No dev queries: the gain over the base was not measured."
        blend = self.blend if self.blend is not None and self.blend.blends else None
        if blend is not None:
            blended = (
                f"Blended with the first stage (reranker weight {blend.weight:g}, chosen on dev): dev "
                f"{self.dev_metric} {blend.dev:.4f}, {blend.cross_validated:.4f} on held-out dev folds; alone "
                f"{self.best_dev:.4f}; the base's {self.base_dev:.4f}."
            )
            if self.improved:
                return blended
            return f"Does not beat its base even blended. {blended} The base is kept."
        if self.improved:
            return f"Dev {self.dev_metric} {self.best_dev:.4f} beats the base's {self.base_dev:.4f}."
        return (
            f"Does not beat its base: best dev {self.dev_metric} {self.best_dev:.4f} vs the base's "
            f"{self.base_dev:.4f}. The base is kept; this model is not offered as an improvement."
        )


def device_name() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def mixed_precision() -> str:
    """``bf16`` where the device multiplies bfloat16 natively (a CUDA GPU that supports it; an AMX / AVX512-BF16 CPU,
    honouring a oneDNN ISA cap), else ``fp32``. Autocast keeps float32 master weights and optimizer state; on a
    2-core AMX Xeon a MiniLM reranker step (batch 16, 256 tokens) takes 1.3x less time. Emulated bf16 is slower.
    """
    import torch

    from workbench.retrieval.encoders import cpu_has_fast_bf16

    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def train_plain(trainer: Any) -> None:
    """``trainer.train()``, then undo the autocast wrapper mixed precision puts on the model's forward, so the model
    returned scores in float32 as it will once saved and reloaded."""
    trainer.train()
    trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)


def hardware() -> dict[str, Any]:
    import platform

    import torch

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    info: dict[str, Any] = {
        "device": device_name(),
        "cpu": cpu,
        "torch_threads": torch.get_num_threads(),
        "precision": mixed_precision(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _trainer_callback(hooks: TrainingHooks, budget_s: float, started: list[float]) -> Any:
    from transformers import TrainerCallback

    class _Callback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            started[0] = time.monotonic()

        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            out_of_time = budget_s and time.monotonic() - started[0] > budget_s
            if out_of_time or state.global_step >= state.max_steps:
                # evaluate and save the last state too, so the best checkpoint is chosen over the whole run
                control.should_training_stop = True
                control.should_evaluate = args.eval_strategy != "no"
                control.should_save = args.save_strategy != "no"
                if out_of_time and hooks.on_log:
                    hooks.on_log(f"time budget of {budget_s:.0f} s reached at step {state.global_step}; stopping")
            if hooks.on_progress:
                hooks.on_progress(state.global_step, state.max_steps, f"step {state.global_step}/{state.max_steps}")
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
            if logs and "loss" in logs and hooks.on_loss:
                hooks.on_loss(state.global_step, float(logs["loss"]))

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # type: ignore[no-untyped-def]
            if metrics and hooks.on_eval:
                hooks.on_eval(state.global_step, {k: float(v) for k, v in metrics.items() if _is_number(v)})

    return _Callback()


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _plan_steps(rows: int, config: Any, evaluations: int = 4) -> tuple[int, int]:
    per_epoch = max(1, math.ceil(rows / config.batch_size))
    total = config.max_steps or max(1, math.ceil(per_epoch * config.epochs))
    eval_steps = config.eval_steps or max(1, math.ceil(total / evaluations))
    return total, eval_steps


def _args(cls: Any, config: Any, scratch: Path, total: int, eval_steps: int, metric: str | None, **extra: Any) -> Any:
    import torch

    evaluate = metric is not None
    return cls(
        output_dir=str(scratch / "checkpoints"),
        max_steps=total,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=round(config.warmup_ratio * total),
        weight_decay=config.weight_decay,
        seed=config.seed,
        data_seed=config.seed,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=eval_steps,
        save_strategy="steps" if evaluate else "no",
        save_steps=eval_steps,
        save_total_limit=2,
        save_only_model=True,
        load_best_model_at_end=evaluate,
        metric_for_best_model=f"eval_{metric}" if evaluate else None,
        greater_is_better=True,
        logging_steps=max(1, min(10, eval_steps // 2 or 1)),
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
        bf16=mixed_precision() == "bf16",
        **extra,
    )


def _history(trainer: Any, metric: str | None) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    loss, dev = [], []
    for entry in trainer.state.log_history:
        if "loss" in entry:
            loss.append((int(entry["step"]), float(entry["loss"])))
        if metric and f"eval_{metric}" in entry:
            dev.append((int(entry["step"]), float(entry[f"eval_{metric}"])))
    return loss, dev


def overfitting_warnings(loss: list[tuple[int, float]], dev: list[tuple[int, float]]) -> list[str]:
    """Dev falling after its best while the training loss keeps dropping: the classic overfitting picture."""
    if len(dev) < 2:
        return []
    best_step, best = max(dev, key=lambda x: (x[1], -x[0]))
    last_step, last = dev[-1]
    loss_at_best = [v for s, v in loss if s <= best_step]
    loss_after = [v for s, v in loss if s > best_step]
    falling = last_step > best_step and best - last > OVERFIT_DROP
    if falling and loss_at_best and loss_after and min(loss_after) < loss_at_best[-1]:
        return [
            f"Possible overfitting: dev fell from {best:.4f} (step {best_step}) to {last:.4f} (step {last_step}) "
            "while the training loss kept dropping; the best checkpoint is the one kept."
        ]
    return []


SMALL_DEV = 20


def small_dev_warnings(prepared: PreparedData) -> list[str]:
    n = len(prepared.dev_queries)
    if 0 < n < SMALL_DEV:
        return [
            f"The dev split has only {n} queries: the comparison with the base is noisy; "
            "label more queries or raise the dev share."
        ]
    return []


def _seed(seed: int) -> None:
    from transformers import set_seed

    random.seed(seed)
    set_seed(seed)


def _manifest_and_card(
    out: Path,
    *,
    kind: str,
    base_path: Path,
    data: SnapshotData,
    config: Any,
    result: TrainResult,
    extra: dict[str, Any],
) -> dict[str, Any]:
    metrics = {
        "dev_metric": result.dev_metric,
        "base_dev": result.base_dev,
        "best_dev": result.best_dev,
        "improved": result.improved,
        "steps": result.steps,
        "train_seconds": round(result.train_seconds, 1),
    }
    if result.blend is not None:
        metrics["blend"] = result.blend.as_dict()
    manifest = make_manifest(
        kind,
        base=str(base_path),
        parameters=config.as_dict(),
        metrics=metrics,
        base_fingerprint=model_fingerprint(base_path),
        snapshot_hash=data.content_hash,
        counts=result.counts,
        seed=config.seed,
        libraries=library_versions(),
        hardware=result.hardware,
        warnings=result.warnings,
        verdict=result.verdict,
        **extra,
    )
    write_manifest(out, manifest)
    write_card(out, manifest)
    return manifest


def _save(
    model: Any, dest: Path, *, keep: bool, build_manifest: Callable[[Path], dict[str, Any]]
) -> tuple[Path | None, dict]:
    if not keep:
        return None, {}
    with atomic_directory(dest) as tmp:
        model.save_pretrained(str(tmp))
        manifest = build_manifest(tmp)
    return dest, manifest


def _add_lora(model: Any, config: Any, task_type: str) -> None:
    from peft import LoraConfig

    model.add_adapter(
        LoraConfig(
            task_type=task_type,
            r=config.lora.rank,
            lora_alpha=config.lora.alpha,
            lora_dropout=config.lora.dropout,
            target_modules=list(config.lora.target_modules),
        )
    )


def train_bi_encoder(
    data: SnapshotData,
    config: BiEncoderConfig,
    *,
    base_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    corpus: dict[str, str] | None = None,
    hooks: TrainingHooks | None = None,
    keep_if_not_improved: bool = True,
    scratch_dir: str | os.PathLike[str] | None = None,
    mining_cache_dir: str | os.PathLike[str] | None = None,
    mining_vectors: DocumentVectors | None = None,
) -> TrainResult:
    """Fine-tune a sentence-transformers bi-encoder on the snapshot's train split (MNRL or cached MNRL, no duplicate
    texts in a batch, audited + mined hard negatives), selecting the best checkpoint on dev nDCG@10."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer import losses
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    config.check()
    hooks = hooks or TrainingHooks()
    t_start = time.monotonic()
    base_path = Path(base_path).resolve()
    prepared = prepare(data, corpus)
    _seed(config.seed)
    log = hooks.on_log or (lambda _m: None)
    model = SentenceTransformer(str(base_path), device=device_name(), local_files_only=True)
    model.max_seq_length = config.max_seq_length
    with tempfile.TemporaryDirectory(prefix="train-", dir=scratch_dir) as scratch_name:
        scratch = Path(scratch_name)
        cache = str(mining_cache_dir or scratch / "mining-cache")
        train_rows, dev_negatives = _bi_encoder_rows(model, prepared, config, cache, log, mining_vectors)
        from datasets import Dataset

        dataset = Dataset.from_dict(train_rows)
        evaluator = None
        metric = None
        base_dev = None
        if prepared.dev_queries:
            evaluator = InformationRetrievalEvaluator(
                queries=prepared.dev_queries,
                corpus=dev_corpus(prepared, dev_negatives, limit=config.dev_corpus_max, seed=config.seed),
                relevant_docs=prepared.dev_relevant,
                name="dev",
                ndcg_at_k=[10],
                mrr_at_k=[10],
                accuracy_at_k=[1],
                precision_recall_at_k=[10, 100],
                map_at_k=[100],
                batch_size=32,
                show_progress_bar=False,
            )
            log(f"evaluating the base on {len(prepared.dev_queries)} dev queries")
            base_scores = evaluator(model)
            metric = evaluator.primary_metric
            base_dev = float(base_scores[metric])
            if hooks.on_eval:
                hooks.on_eval(0, {f"eval_{k}": float(v) for k, v in base_scores.items()})
        if config.lora:
            _add_lora(model, config, "FEATURE_EXTRACTION")
        loss: Any = (
            losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.mini_batch_size)
            if config.loss == "cached_mnrl"
            else losses.MultipleNegativesRankingLoss(model)
        )
        if config.matryoshka_dims:
            loss = losses.MatryoshkaLoss(model, loss, matryoshka_dims=list(config.matryoshka_dims))
        total, eval_steps = _plan_steps(len(dataset), config)
        args = _args(
            SentenceTransformerTrainingArguments,
            config,
            scratch,
            total,
            eval_steps,
            metric,
            batch_sampler=BatchSamplers.NO_DUPLICATES,
        )
        started = [time.monotonic()]
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            loss=loss,
            evaluator=evaluator,
            callbacks=[_trainer_callback(hooks, config.max_train_seconds, started)],
        )
        log(
            f"training {total} steps on {len(dataset)} rows (batch {config.batch_size}) on {device_name()}, "
            f"{mixed_precision()}"
        )
        train_plain(trainer)
        train_seconds = time.monotonic() - started[0]
        result = _finish(trainer, metric, base_dev, train_seconds, t_start, prepared)
        result.model = model
        dest = Path(output_dir)
        keep = keep_if_not_improved or result.improved is not False
        result.artifact_path, result.manifest = _save(
            model,
            dest,
            keep=keep,
            build_manifest=lambda tmp: _manifest_and_card(
                tmp,
                kind="lora_adapter" if config.lora else "bi_encoder",
                base_path=base_path,
                data=data,
                config=config,
                result=result,
                extra={"model_class": "SentenceTransformer", "adapter_of": "bi_encoder" if config.lora else None},
            ),
        )
    return result


def _finish(
    trainer: Any,
    metric: str | None,
    base_dev: float | None,
    train_seconds: float,
    t_start: float,
    prepared: PreparedData,
) -> TrainResult:
    loss, dev = _history(trainer, metric)
    best = max((v for _, v in dev), default=None)
    improved = None if base_dev is None or best is None else best > base_dev + MIN_GAIN
    return TrainResult(
        artifact_path=None,
        improved=improved,
        dev_metric=(metric or "").removeprefix("dev_").replace("cosine_", ""),
        base_dev=base_dev,
        best_dev=best,
        steps=int(trainer.state.global_step),
        train_seconds=train_seconds,
        total_seconds=time.monotonic() - t_start,
        loss_history=loss,
        dev_history=dev,
        warnings=overfitting_warnings(loss, dev) + small_dev_warnings(prepared),
        counts=dict(prepared.counts),
        hardware=hardware(),
    )


def first_stage_candidates(
    first_stage_path: str | os.PathLike[str],
    prepared: PreparedData,
    config: Any,
    cache: str,
    known: DocumentVectors | None,
    log: Callable[[str], None],
) -> tuple[dict[str, list[tuple[str, float]]], list[dict[str, Any]]]:
    """A reranker's inputs from its first-stage bi-encoder (loaded here, freed on return): the train queries' mined
    negatives and the dev rerank samples."""
    from sentence_transformers import SentenceTransformer

    first_stage = SentenceTransformer(str(first_stage_path), device=device_name(), local_files_only=True)
    first_stage.max_seq_length = min(first_stage.max_seq_length or config.max_seq_length, config.max_seq_length)
    mined, dev_negatives = mine_train_and_dev(first_stage, prepared, config.mining, cache, known, log)
    return mined, _rerank_dev_samples(first_stage, prepared, dev_negatives, config)


def mine_train_and_dev(
    model: Any,
    prepared: PreparedData,
    mining: MiningSettings,
    cache: str,
    known: DocumentVectors | None,
    log: Callable[[str], None],
) -> tuple[dict[str, list[tuple[str, float]]], dict[str, list[tuple[str, float]]]]:
    """Hard negatives of the train queries (``mining.num_negatives`` each) and the dev queries' candidates
    (``DEV_CANDIDATES`` each) with ``model``; the collection is embedded once (cached) or read from ``known``."""
    if known is not None:
        have = len(set(known.doc_ids) & set(prepared.corpus))
        log(f"mining reads {have:,} of {len(prepared.corpus):,} documents' vectors from an index built with this model")
    mined = mine(model, prepared.train_pairs, prepared.corpus, mining, cache_folder=cache, known=known)
    dev_pairs = [(q, t, d) for q, t in prepared.dev_queries.items() for d in sorted(prepared.dev_relevant[q])]
    dev_negatives = (
        mine(model, dev_pairs, prepared.corpus, dev_mining(mining), num_negatives=DEV_CANDIDATES, cache_folder=cache,
             known=known)
        if dev_pairs
        else {}
    )  # fmt: skip
    return mined, dev_negatives


def dev_mining(mining: MiningSettings) -> MiningSettings:
    """The dev corpus's candidates: the base's top documents with no skip and no relative margin. Those keep likely
    unlabelled positives out of *training*; in the dev corpus they would remove exactly the documents the base ranks
    close to a positive, its confusers, and flatter it against every model it is compared with (on SciFact: the
    first stage's dev nDCG@10 0.784 with the 5 % margin, 0.649 without, near its 0.645 on test over the whole
    collection; a reranker trained 6 epochs 0.760 and 0.726: below the first stage by one count, above by the other)."""
    return replace(mining, range_min=0, relative_margin=0.0, range_max=max(mining.range_max, DEV_CANDIDATES))


def _bi_encoder_rows(
    model: Any,
    prepared: PreparedData,
    config: BiEncoderConfig,
    cache: str,
    log: Callable[[str], None],
    known: DocumentVectors | None,
) -> tuple[dict[str, list[str]], dict[str, list[tuple[str, float]]]]:
    k = config.mining.num_negatives
    if k:
        log(f"mining {k} hard negatives per query among {len(prepared.corpus)} documents")
    mined, dev_negatives = mine_train_and_dev(model, prepared, config.mining, cache, known, log)
    rows: dict[str, list[str]] = {"anchor": [], "positive": []}
    for i in range(k):
        rows[f"negative_{i + 1}"] = []
    rng = random.Random(config.seed)
    ids = sorted(prepared.corpus)
    positives: dict[str, set[str]] = {}
    for q, _, d in prepared.train_pairs:
        positives.setdefault(q, set()).add(d)
    audited = prepared.counts.get("audited_negatives", 0)
    for q, text, d in prepared.train_pairs:
        negs = [n for n in prepared_audited(prepared, q) if n not in positives[q]] if audited else []
        negs += [n for n, _ in mined.get(q, []) if n not in positives[q] and n not in negs]
        while len(negs) < k:
            extra = random_negative(ids, positives[q] | set(negs), rng)
            if extra is None:
                break
            negs.append(extra)
        if len(negs) < k:
            continue
        rows["anchor"].append(text)
        rows["positive"].append(prepared.corpus[d])
        for i in range(k):
            rows[f"negative_{i + 1}"].append(prepared.corpus[negs[i]])
    if not rows["anchor"]:
        raise TrainingInputError("No training rows could be built from the snapshot's train split.")
    return rows, dev_negatives


def prepared_audited(prepared: PreparedData, qid: str) -> list[str]:
    return [d for d in prepared.audited.get(qid, []) if d in prepared.corpus]


def train_cross_encoder(
    data: SnapshotData,
    config: CrossEncoderConfig,
    *,
    base_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    first_stage_path: str | os.PathLike[str],
    corpus: dict[str, str] | None = None,
    hooks: TrainingHooks | None = None,
    keep_if_not_improved: bool = True,
    scratch_dir: str | os.PathLike[str] | None = None,
    mining_cache_dir: str | os.PathLike[str] | None = None,
    mining_vectors: DocumentVectors | None = None,
) -> TrainResult:
    """Train a reranker: from a bi-encoder base (fresh one-logit head) or an earlier cross-encoder, on (query,
    passage, label) pairs with BCE (positives weighted) or on per-query lists with LambdaLoss. Negatives are audited +
    mined with the first-stage bi-encoder; the dev set reranks each dev query's first-stage candidates, and the base
    to beat is the first-stage order (or the earlier reranker)."""
    import torch
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder import losses
    from sentence_transformers.cross_encoder.trainer import CrossEncoderTrainer
    from sentence_transformers.cross_encoder.training_args import CrossEncoderTrainingArguments

    from training.ml.rerank_dev import RerankDevEvaluator
    from workbench.retrieval.encoders import detect_model_kind

    config.check()
    hooks = hooks or TrainingHooks()
    log = hooks.on_log or (lambda _m: None)
    t_start = time.monotonic()
    base_path = Path(base_path).resolve()
    prepared = prepare(data, corpus)
    _seed(config.seed)
    from_reranker = detect_model_kind(base_path) == "cross-encoder"
    with tempfile.TemporaryDirectory(prefix="train-", dir=scratch_dir) as scratch_name:
        scratch = Path(scratch_name)
        cache = str(mining_cache_dir or scratch / "mining-cache")
        log(f"mining {config.mining.num_negatives} hard negatives per query with the first stage")
        mined, samples = first_stage_candidates(first_stage_path, prepared, config, cache, mining_vectors, log)
        model = CrossEncoder(
            str(base_path),
            num_labels=1,
            max_length=config.max_seq_length,
            device=device_name(),
            local_files_only=True,
        )
        from datasets import Dataset

        dataset = Dataset.from_dict(_cross_encoder_rows(prepared, mined, config))
        evaluator, metric, base_dev = None, None, None
        if samples:
            evaluator = RerankDevEvaluator(samples)
            # A fresh head ranks at random: the base to beat is the first-stage order, which needs no model call
            # (scoring the dev pairs costs as much as a third of an epoch on a CPU without bf16).
            log(f"evaluating the base on {len(samples)} dev queries")
            scores = evaluator(model if from_reranker else _InputOrder())
            metric = evaluator.primary_metric
            first_stage_dev = float(scores["dev_base_ndcg@10"])
            base_dev = max(first_stage_dev, float(scores[metric])) if from_reranker else first_stage_dev
            if hooks.on_eval:
                hooks.on_eval(0, {f"eval_{k}": float(v) for k, v in scores.items()})
        if config.lora:
            _add_lora(model, config, "SEQ_CLS")
        if config.loss == "lambda":
            loss: Any = losses.LambdaLoss(model)
        else:
            weight = config.pos_weight or float(config.mining.num_negatives)
            loss = losses.BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(weight))
        total, eval_steps = _plan_steps(len(dataset), config, evaluations=CE_EVALUATIONS)
        args = _args(CrossEncoderTrainingArguments, config, scratch, total, eval_steps, metric)
        started = [time.monotonic()]
        trainer = CrossEncoderTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            loss=loss,
            evaluator=evaluator,
            callbacks=[_trainer_callback(hooks, config.max_train_seconds, started)],
        )
        log(
            f"training {total} steps on {len(dataset)} rows (batch {config.batch_size}) on {device_name()}, "
            f"{mixed_precision()}"
        )
        train_plain(trainer)
        result = _finish(trainer, metric, base_dev, time.monotonic() - started[0], t_start, prepared)
        result.model = model
        if evaluator is not None and result.dev_history:
            best_step = max(result.dev_history, key=lambda sv: sv[1])[0]  # the checkpoint the trainer kept
            result.blend = evaluator.blend_choice(best_step)
            if result.blend is not None and result.blend.blends and result.base_dev is not None:
                log(f"blend with the first stage: {result.blend.as_dict()}")
                # the held-out estimate, not the weight's own dev figure, decides whether blending helps
                result.improved = max(result.best_dev or 0.0, result.blend.cross_validated) > result.base_dev + MIN_GAIN
        keep = keep_if_not_improved or result.improved is not False
        result.artifact_path, result.manifest = _save(
            model,
            Path(output_dir),
            keep=keep,
            build_manifest=lambda tmp: _manifest_and_card(
                tmp,
                kind="lora_adapter" if config.lora else "cross_encoder",
                base_path=base_path,
                data=data,
                config=config,
                result=result,
                extra={
                    "model_class": "CrossEncoder",
                    "adapter_of": "cross_encoder" if config.lora else None,
                    "head": "from the earlier reranker" if from_reranker else "fresh (one logit)",
                    "first_stage": str(first_stage_path),
                },
            ),
        )
    return result


class _NoModelCard:
    def set_evaluation_metrics(self, *args: Any, **kwargs: Any) -> None:
        pass


class _InputOrder:
    """Scores pairs in the order given: under ``CrossEncoderRerankingEvaluator`` it reproduces the first stage."""

    model_card_data = _NoModelCard()

    def predict(self, pairs: list, **kwargs: Any) -> Any:
        import numpy as np

        return np.arange(len(pairs), 0, -1, dtype=np.float64)


def _rerank_dev_samples(
    first_stage: Any, prepared: PreparedData, dev_negatives: dict[str, list[tuple[str, float]]], config: Any
) -> list[dict[str, Any]]:
    """Each dev query's first-stage top ``DEV_RERANK_DEPTH`` over the dev corpus, in first-stage order, positives
    wherever they land (and missing when the first stage misses them): the base to beat is that order."""
    import numpy as np

    docs = dev_corpus(prepared, dev_negatives, limit=config.dev_corpus_max, seed=config.seed)
    if not prepared.dev_queries:
        return []
    ids = list(docs)
    qids = sorted(prepared.dev_queries)
    d_emb = first_stage.encode([docs[d] for d in ids], batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    q_emb = first_stage.encode(
        [prepared.dev_queries[q] for q in qids], batch_size=32, normalize_embeddings=True, convert_to_numpy=True
    )
    scores = q_emb @ d_emb.T
    samples = []
    for i, q in enumerate(qids):
        order = np.argsort(-scores[i], kind="stable")[:DEV_RERANK_DEPTH]
        samples.append(
            {
                "query": prepared.dev_queries[q],
                "positive": [prepared.corpus[d] for d in sorted(prepared.dev_relevant[q])],
                "documents": [docs[ids[j]] for j in order],
                "first_stage_scores": [float(scores[i, j]) for j in order],  # for blending (rerank_dev)
            }
        )
    return samples


def query_candidates(
    prepared: PreparedData, mined: dict[str, list[tuple[str, float]]], *, num_negatives: int, seed: int
) -> dict[str, tuple[str, list[str], list[str]]]:
    """train query id -> (text, positives, candidates): its audited negatives, then mined ones, padded with seeded
    random documents to ``num_negatives`` (all audited ones are kept even beyond that)."""
    rng = random.Random(seed)
    ids = sorted(prepared.corpus)
    by_query: dict[str, tuple[str, list[str]]] = {}
    for q, text, d in prepared.train_pairs:
        by_query.setdefault(q, (text, []))[1].append(d)
    out = {}
    for q in sorted(by_query):
        text, positives = by_query[q]
        audited = prepared_audited(prepared, q)
        cands = [n for n in audited if n not in positives]
        cands += [n for n, _ in mined.get(q, []) if n not in positives and n not in cands]
        while len(cands) < num_negatives:
            extra = random_negative(ids, set(positives) | set(cands), rng)
            if extra is None:
                break
            cands.append(extra)
        out[q] = (text, positives, cands[: max(num_negatives, len(audited))])
    return out


def _cross_encoder_rows(
    prepared: PreparedData, mined: dict[str, list[tuple[str, float]]], config: CrossEncoderConfig
) -> dict[str, list]:
    listwise = config.loss == "lambda"
    rows: dict[str, list] = (
        {"query": [], "docs": [], "labels": []} if listwise else {"query": [], "doc": [], "label": []}
    )
    candidates = query_candidates(prepared, mined, num_negatives=config.mining.num_negatives, seed=config.seed)
    for text, positives, negs in candidates.values():
        if listwise:
            rows["query"].append(text)
            rows["docs"].append([prepared.corpus[d] for d in positives + negs])
            rows["labels"].append([1.0] * len(positives) + [0.0] * len(negs))
        else:
            for d, label in [(d, 1.0) for d in positives] + [(d, 0.0) for d in negs]:
                rows["query"].append(text)
                rows["doc"].append(prepared.corpus[d])
                rows["label"].append(label)
    if not rows["query"]:
        raise TrainingInputError("No training rows could be built from the snapshot's train split.")
    return rows


def clear_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)

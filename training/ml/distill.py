"""Distillation: a smaller, faster student reranker trained on a trained teacher reranker's scores.

``train_distilled_reranker`` mines candidates for each train query with the first stage, has the teacher score every
(query, candidate) pair once (batched, cached), and trains a student cross-encoder (the teacher or a bi-encoder base
cut to N of its transformer layers, the bottom ones or evenly spaced, optionally with a shorter max length) on those
scores with the library's ``MSELoss`` (logits), ``MarginMSELoss`` (positive - candidate margins) or ``ListNetLoss``
(the teacher's softmax over each query's list), through ``CrossEncoderTrainer``. Teacher and student are evaluated on
the same dev rerank samples; the best student checkpoint is kept, and it is offered when its dev nDCG@10 is within a
tolerance of the teacher's: its purpose is speed, measured at the end on a few dev pairs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.ml.config import DistillConfig, TrainingInputError
from training.ml.data import SnapshotData
from training.ml.datasets import DocumentVectors, PreparedData, prepare
from training.ml.train import (
    TrainingHooks,
    TrainResult,
    _args,
    _finish,
    _manifest_and_card,
    _plan_steps,
    _save,
    _seed,
    _trainer_callback,
    device_name,
    first_stage_candidates,
    mixed_precision,
    query_candidates,
    train_plain,
)
from workbench.retrieval.artifacts import read_manifest
from workbench.retrieval.encoders import detect_model_kind, model_fingerprint

TEACHER_BATCH = 32
SPEED_PAIRS = 32  # dev pairs the teacher/student speed ratio is measured on
SPEED_REPEATS = 3  # the fastest of these timed passes counts (the others absorb noise from a shared machine)


@dataclass
class DistillResult(TrainResult):
    """A ``TrainResult`` whose base is the teacher: ``base_dev`` is the teacher's dev score, ``improved`` means
    "within the tolerance of the teacher", and the speed ratio says what the loss buys."""

    teacher_dev: float | None = None
    first_stage_dev: float | None = None
    tolerance_points: float = 1.0
    student_layers: int = 0
    kept_layers: list[int] = field(default_factory=list)  # 0-based indices of the start's layers the student kept
    teacher_layers: int = 0
    student_max_length: int = 0
    teacher_max_length: int = 0
    speed: dict[str, Any] = field(default_factory=dict)

    @property
    def delta_points(self) -> float | None:
        if self.best_dev is None or self.teacher_dev is None:
            return None
        return 100 * (self.best_dev - self.teacher_dev)

    @property
    def verdict(self) -> str:
        layers = f"{self.student_layers} layer{'s' if self.student_layers != 1 else ''}"
        student = f"Student ({layers}, {self.student_max_length} tokens)"
        speed = (
            f"{self.speed['ratio']:.1f}x faster per pair than the teacher ({self.teacher_layers} layers, "
            f"{self.teacher_max_length} tokens; measured on {self.speed['pairs']} pairs on {self.speed['device']})"
            if self.speed.get("ratio")
            else "speed not measured"
        )
        if self.improved is None or self.delta_points is None:
            return f"{student}: no dev queries, so its loss against the teacher was not measured; {speed}."
        head = (
            f"{student} dev {self.dev_metric} {self.best_dev:.4f} vs teacher {self.teacher_dev:.4f} "
            f"({self.delta_points:+.1f} point{'s' if abs(round(self.delta_points, 1)) != 1 else ''}), {speed}."
        )
        if self.improved:
            return f"{head} Within the {self.tolerance_points:g}-point tolerance: offered as a faster reranker."
        return (
            f"{head} Loses more than the {self.tolerance_points:g}-point tolerance: not offered as a reranker; "
            "keep more layers or tokens, or train longer."
        )


def model_layers(path: str | os.PathLike[str]) -> int | None:
    """Transformer layers of a saved Hugging Face / sentence-transformers model (its ``config.json``), if known."""
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("num_hidden_layers") or config.get("n_layers") or config.get("num_layers")
    return int(value) if isinstance(value, int) else None


def check_teacher(path: str | os.PathLike[str]) -> int:
    """Refuse a teacher that is not a full cross-encoder; return its number of layers."""
    kind = detect_model_kind(path)
    if kind != "cross-encoder":
        raise TrainingInputError(
            f"The teacher must be a trained cross-encoder reranker; {path} holds a {kind}. "
            "Train a reranker first and distil that."
        )
    manifest = read_manifest(path) if (Path(path) / "manifest.json").is_file() else {}
    if manifest.get("kind") == "lora_adapter":
        raise TrainingInputError("A LoRA adapter cannot be a teacher: distil a full reranker.")
    layers = model_layers(path)
    if layers is None:
        raise TrainingInputError(f"Cannot tell how many layers the teacher at {path} has (no config.json).")
    return layers


def student_layer_count(config: DistillConfig, available: int, *, source: str) -> int:
    """The layers the student keeps; ``TrainingInputError`` when asked for more than its start has."""
    if config.student_layers > available:
        raise TrainingInputError(
            f"The student cannot keep {config.student_layers} layers: the {source} has only {available}."
        )
    return config.student_layers or available


def kept_layers(available: int, keep: int, pick: str = "first") -> list[int]:
    """Indices of the ``keep`` of ``available`` transformer layers a student keeps: the bottom ones ("first") or
    evenly spaced ones ending with the top layer ("spread": 2 of 6 -> 2, 5; 3 of 6 -> 1, 3, 5)."""
    keep = min(keep, available)
    if pick == "spread":
        return [math.floor((i + 1) * available / keep + 0.5) - 1 for i in range(keep)]  # halves round up
    return list(range(keep))


def truncate_layers(model: Any, layers: int, pick: str = "first") -> list[int]:
    """Keep ``layers`` transformer layers of a CrossEncoder's Hugging Face model (chosen by ``kept_layers``), in
    place, and record the depth in its config so the saved artifact reloads with it. Returns the kept indices."""
    import torch

    hf = model.model
    encoder = getattr(getattr(hf, hf.base_model_prefix), "encoder", None)
    if encoder is None or not hasattr(encoder, "layer"):
        raise TrainingInputError(f"Cannot cut layers of a {type(hf).__name__}: only BERT-like encoders are supported.")
    kept = kept_layers(len(encoder.layer), layers, pick)
    encoder.layer = torch.nn.ModuleList([encoder.layer[i] for i in kept])
    hf.config.num_hidden_layers = len(encoder.layer)
    return kept


def reset_head(model: Any) -> None:
    """A fresh scoring head (the Hugging Face initialiser's normal(0, initializer_range) weights, zero bias)."""
    import torch

    hf = model.model
    std = float(getattr(hf.config, "initializer_range", 0.02))
    for module in hf.classifier.modules() if hasattr(hf, "classifier") else []:
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=std)
            torch.nn.init.zeros_(module.bias)


def teacher_scores(
    teacher: Any,
    pairs: list[tuple[str, str]],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    fingerprint: str = "",
    log: Any = None,
) -> list[float]:
    """The teacher's raw logits for ``pairs`` (no sigmoid: what MSE on logits needs), batched under
    ``torch.inference_mode``; cached as .npy in ``cache_dir`` keyed by the teacher and the exact pairs."""
    import numpy as np
    import torch

    key = hashlib.sha256(f"{fingerprint}|{teacher.max_seq_length}".encode())
    for q, d in pairs:
        key.update(f"{len(q)}:{q}{len(d)}:{d}".encode())
    cache = Path(cache_dir) / f"teacher-scores-{key.hexdigest()[:24]}.npy" if cache_dir else None
    if cache is not None and cache.is_file():
        cached = np.load(cache)
        if len(cached) == len(pairs):
            return [float(x) for x in cached]
    out: list[float] = []
    chunk = 1024
    teacher.eval()
    with torch.inference_mode():
        for start in range(0, len(pairs), chunk):
            part = pairs[start : start + chunk]
            scores = teacher.predict(
                part, batch_size=TEACHER_BATCH, activation_fn=torch.nn.Identity(), show_progress_bar=False
            )
            out.extend(float(x) for x in np.asarray(scores).reshape(-1))
            if log:
                log(f"teacher scored {len(out)}/{len(pairs)} pairs")
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npy")
        np.save(tmp, np.asarray(out, dtype=np.float32))
        tmp.replace(cache)
    return out


def measure_speed(teacher: Any, student: Any, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Seconds per pair of teacher and student on the same pairs (each at its own max length), fastest of a few
    passes after a warm-up, and the ratio teacher / student."""
    import torch

    if not pairs:
        return {}

    def timed(model: Any) -> float:
        model.eval()
        with torch.inference_mode():
            model.predict(pairs[:2], batch_size=TEACHER_BATCH, show_progress_bar=False)
            best = float("inf")
            for _ in range(SPEED_REPEATS):
                t0 = time.perf_counter()
                model.predict(pairs, batch_size=TEACHER_BATCH, show_progress_bar=False)
                best = min(best, time.perf_counter() - t0)
        return best / len(pairs)

    t_teacher, t_student = timed(teacher), timed(student)
    return {
        "pairs": len(pairs),
        "device": device_name(),
        "teacher_ms_per_pair": round(1000 * t_teacher, 3),
        "student_ms_per_pair": round(1000 * t_student, 3),
        "ratio": round(t_teacher / t_student, 2) if t_student > 0 else None,
        "torch_threads": torch.get_num_threads(),
    }


def distill_rows(
    prepared: PreparedData,
    candidates: dict[str, tuple[str, list[str], list[str]]],
    score: dict[tuple[str, str], float],
    loss: str,
) -> dict[str, list]:
    """Training rows in the column layout each loss expects, labelled with the teacher's logits."""
    corpus = prepared.corpus
    rows: dict[str, list]
    if loss == "listnet":
        rows = {"query": [], "docs": [], "labels": []}
    elif loss == "margin_mse":
        k = min((len(c) for _, _, c in candidates.values()), default=0)
        rows = {"query": [], "positive": [], **{f"negative_{i + 1}": [] for i in range(k)}, "label": []}
    else:
        rows = {"query": [], "doc": [], "label": []}
    for q in sorted(candidates):
        text, positives, cands = candidates[q]
        if loss == "listnet":
            docs = [corpus[d] for d in positives + cands]
            rows["query"].append(text)
            rows["docs"].append(docs)
            rows["labels"].append([score[(text, t)] for t in docs])
        elif loss == "margin_mse":
            if not k:
                break
            negs = [corpus[d] for d in cands[:k]]
            for p in positives:
                rows["query"].append(text)
                rows["positive"].append(corpus[p])
                for i, t in enumerate(negs):
                    rows[f"negative_{i + 1}"].append(t)
                rows["label"].append([score[(text, corpus[p])]] + [score[(text, t)] for t in negs])
        else:
            for d in positives + cands:
                rows["query"].append(text)
                rows["doc"].append(corpus[d])
                rows["label"].append(score[(text, corpus[d])])
    if not rows["query"]:
        raise TrainingInputError("No distillation rows could be built from the snapshot's train split.")
    return rows


def _pairs(candidates: dict[str, tuple[str, list[str], list[str]]], corpus: dict[str, str]) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for q in sorted(candidates):
        text, positives, cands = candidates[q]
        for d in positives + cands:
            seen[(text, corpus[d])] = None
    return list(seen)


def train_distilled_reranker(
    data: SnapshotData,
    config: DistillConfig,
    *,
    teacher_path: str | os.PathLike[str],
    first_stage_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    base_path: str | os.PathLike[str] | None = None,
    corpus: dict[str, str] | None = None,
    hooks: TrainingHooks | None = None,
    keep_if_not_improved: bool = True,
    scratch_dir: str | os.PathLike[str] | None = None,
    mining_cache_dir: str | os.PathLike[str] | None = None,
    mining_vectors: DocumentVectors | None = None,
) -> DistillResult:
    """Distil ``teacher_path`` (a trained cross-encoder) into a student with ``config.student_layers`` layers and
    ``config.max_seq_length`` tokens. The student starts from the teacher (``student_init="teacher"``, its head kept
    unless ``fresh_head``) or from ``base_path`` (a bi-encoder, fresh head). The result's ``improved`` is True when
    the best student's dev nDCG@10 is within ``tolerance_points`` of the teacher's on the same dev samples."""
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder import losses
    from sentence_transformers.cross_encoder.trainer import CrossEncoderTrainer
    from sentence_transformers.cross_encoder.training_args import CrossEncoderTrainingArguments

    from training.ml.rerank_dev import RerankDevEvaluator

    config.check()
    hooks = hooks or TrainingHooks()
    log = hooks.on_log or (lambda _m: None)
    t_start = time.monotonic()
    teacher_path = Path(teacher_path).resolve()
    teacher_layers = check_teacher(teacher_path)
    if config.student_init == "base":
        if base_path is None:
            raise TrainingInputError("A student started from a base model needs that base's path.")
        start_path = Path(base_path).resolve()
        if detect_model_kind(start_path) != "bi-encoder":
            raise TrainingInputError("A student with a fresh head starts from a bi-encoder base.")
        start_layers = model_layers(start_path)
        if start_layers is None:
            raise TrainingInputError(f"Cannot tell how many layers the base at {start_path} has (no config.json).")
        layers = student_layer_count(config, start_layers, source="base model")
    else:
        start_path = teacher_path
        layers = student_layer_count(config, teacher_layers, source="teacher")
    prepared = prepare(data, corpus)
    _seed(config.seed)
    with tempfile.TemporaryDirectory(prefix="distill-", dir=scratch_dir) as scratch_name:
        scratch = Path(scratch_name)
        cache = str(mining_cache_dir or scratch / "mining-cache")
        log(f"mining {config.mining.num_negatives} candidates per train query with the first stage")
        mined, samples = first_stage_candidates(first_stage_path, prepared, config, cache, mining_vectors, log)

        teacher = CrossEncoder(str(teacher_path), device=device_name(), local_files_only=True)
        candidates = query_candidates(prepared, mined, num_negatives=config.mining.num_negatives, seed=config.seed)
        pairs = _pairs(candidates, prepared.corpus)
        log(f"the teacher ({teacher_layers} layers, {teacher.max_seq_length} tokens) scores {len(pairs)} pairs")
        scores = teacher_scores(teacher, pairs, cache_dir=cache, fingerprint=model_fingerprint(teacher_path), log=log)
        score = dict(zip(pairs, scores, strict=True))
        from datasets import Dataset

        dataset = Dataset.from_dict(distill_rows(prepared, candidates, score, config.loss))

        evaluator, metric, teacher_dev, first_stage_dev = None, None, None, None
        if samples:
            evaluator = RerankDevEvaluator(samples)
            log(f"evaluating the teacher on {len(samples)} dev queries")
            teacher_eval = evaluator(teacher)
            metric = evaluator.primary_metric
            teacher_dev = float(teacher_eval[metric])
            first_stage_dev = float(teacher_eval["dev_base_ndcg@10"])
        model = CrossEncoder(
            str(start_path),
            num_labels=1,
            max_length=config.max_seq_length,
            device=device_name(),
            local_files_only=True,
        )
        limit = int(getattr(model.model.config, "max_position_embeddings", 0) or 0)
        if limit and config.max_seq_length > limit:
            raise TrainingInputError(
                f"Max sequence length {config.max_seq_length} is longer than the model's {limit} positions."
            )
        kept = truncate_layers(model, layers, config.layer_pick)
        layers = len(kept)
        fresh = config.student_init == "base" or config.fresh_head
        if config.student_init == "teacher" and config.fresh_head:
            reset_head(model)
        if evaluator is not None:
            log(f"evaluating the {layers}-layer student before training on {len(samples)} dev queries")
            student_eval = evaluator(model)
            if hooks.on_eval:
                hooks.on_eval(
                    0,
                    {
                        f"eval_{metric}": float(student_eval[metric]),
                        "eval_dev_teacher_ndcg@10": float(teacher_dev or 0.0),
                    },
                )
        if config.loss == "listnet":
            loss: Any = losses.ListNetLoss(model)
        elif config.loss == "margin_mse":
            loss = losses.MarginMSELoss(model)
        else:
            loss = losses.MSELoss(model)
        total, eval_steps = _plan_steps(len(dataset), config)
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
            f"training a {layers}-layer student ({config.loss}) {total} steps on {len(dataset)} rows "
            f"(batch {config.batch_size}) on {device_name()}, {mixed_precision()}"
        )
        train_plain(trainer)
        base = _finish(trainer, metric, teacher_dev, time.monotonic() - started[0], t_start, prepared)
        result = DistillResult(
            **{k: getattr(base, k) for k in TrainResult.__dataclass_fields__},
            teacher_dev=teacher_dev,
            first_stage_dev=first_stage_dev,
            tolerance_points=config.tolerance_points,
            student_layers=layers,
            kept_layers=kept,
            teacher_layers=teacher_layers,
            student_max_length=int(model.max_seq_length),
            teacher_max_length=int(teacher.max_seq_length),
        )
        if teacher_dev is not None and result.best_dev is not None:
            result.improved = result.best_dev >= teacher_dev - config.tolerance_points / 100 - 1e-9
        speed_pairs = [(s["query"], d) for s in samples for d in s["documents"]][:SPEED_PAIRS] or pairs[:SPEED_PAIRS]
        log(f"timing teacher and student on {len(speed_pairs)} pairs")
        result.speed = measure_speed(teacher, model, speed_pairs)
        del teacher
        result.model = model
        result.total_seconds = time.monotonic() - t_start
        keep = keep_if_not_improved or result.improved is not False
        distillation = {
            "teacher": str(teacher_path),
            "teacher_fingerprint": model_fingerprint(teacher_path),
            "teacher_layers": teacher_layers,
            "teacher_max_length": result.teacher_max_length,
            "student_layers": layers,
            "student_layer_indices": kept,  # 0-based, of the start model
            "student_max_length": result.student_max_length,
            "student_init": config.student_init,
            "loss": config.loss,
            "candidates_per_query": config.mining.num_negatives,
            "teacher_pairs_scored": len(pairs),
            "teacher_dev": teacher_dev,
            "student_dev": result.best_dev,
            "first_stage_dev": first_stage_dev,
            "delta_points": None if result.delta_points is None else round(result.delta_points, 2),
            "tolerance_points": config.tolerance_points,
            "speed": result.speed,
        }
        result.artifact_path, result.manifest = _save(
            model,
            Path(output_dir),
            keep=keep,
            build_manifest=lambda tmp: _manifest_and_card(
                tmp,
                kind="cross_encoder",
                base_path=start_path,
                data=data,
                config=config,
                result=result,
                extra={
                    "model_class": "CrossEncoder",
                    "adapter_of": None,
                    "head": "fresh (one logit)" if fresh else "from the teacher",
                    "first_stage": str(first_stage_path),
                    "distillation": distillation,
                },
            ),
        )
    return result

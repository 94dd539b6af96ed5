"""Training recipes as plain dataclasses, with the range checks a form and a notebook share.

Defaults are chosen to be safe on any collection, not tuned to one: a small learning rate, few epochs, hard negatives
mined outside a relative margin of the positive (so unlabelled relevant passages are rarely used as negatives), and
model selection on the dev split with the base kept when dev does not improve.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class TrainingInputError(ValueError):
    """Bad training input (snapshot or hyperparameters), with a message a user can read."""


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: tuple[str, ...] = ("query", "value")

    def check(self) -> None:
        _within("LoRA rank", self.rank, 1, 256)
        _within("LoRA alpha", self.alpha, 1, 1024)
        _within("LoRA dropout", self.dropout, 0.0, 0.9)
        if not self.target_modules or not all(str(m).strip() for m in self.target_modules):
            raise TrainingInputError("Name at least one LoRA target module (e.g. query, value).")


@dataclass(frozen=True)
class MiningSettings:
    """Hard negatives from ``sentence_transformers.util.mine_hard_negatives`` with the base model."""

    num_negatives: int = 1  # per query; each one adds a passage to every training row
    range_min: int = 0  # skip this many top candidates
    range_max: int = 50  # look no deeper than this rank
    relative_margin: float = 0.05  # drop candidates scoring within 5 % of the positive (likely unlabelled positives)

    def check(self) -> None:
        _within("Negatives per query", self.num_negatives, 0, 16)
        _within("Mining range start", self.range_min, 0, 1000)
        _within("Mining range end", self.range_max, 1, 2000)
        if self.num_negatives and self.range_max - self.range_min < self.num_negatives:
            raise TrainingInputError("The mining rank window must hold at least as many candidates as negatives.")
        _within("Relative margin", self.relative_margin, 0.0, 0.5)


@dataclass(frozen=True)
class CommonSettings:
    learning_rate: float = 2e-5
    epochs: float = 1.0
    batch_size: int = 32
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_seq_length: int = 256
    seed: int = 0
    eval_steps: int = 0  # 0: about four evaluations per run
    max_train_seconds: float = 0.0  # 0: no time budget; otherwise stop (and keep the best checkpoint) after this
    max_steps: int = 0  # 0: by epochs
    dev_corpus_max: int = 1000  # documents the dev evaluation ranks (positives + base top candidates + sample)

    def check(self) -> None:
        _within("Learning rate", self.learning_rate, 1e-7, 1e-2)
        _within("Epochs", self.epochs, 0.01, 50)
        _within("Batch size", self.batch_size, 2, 1024)
        _within("Warmup share", self.warmup_ratio, 0.0, 0.5)
        _within("Weight decay", self.weight_decay, 0.0, 1.0)
        _within("Max sequence length", self.max_seq_length, 16, 8192)
        _within("Seed", self.seed, 0, 2**31 - 1)
        _within("Evaluation interval", self.eval_steps, 0, 100_000)
        _within("Time budget", self.max_train_seconds, 0, 7 * 24 * 3600)
        _within("Max steps", self.max_steps, 0, 10_000_000)
        _within("Dev corpus size", self.dev_corpus_max, 10, 1_000_000)


@dataclass(frozen=True)
class BiEncoderConfig(CommonSettings):
    # Two passes over the labels; dev selection keeps the best checkpoint (or the base), so a second epoch can only help
    # the kept model, and on a CPU one epoch of a few hundred queries is only tens of optimiser steps.
    epochs: float = 2.0
    loss: str = "mnrl"  # mnrl | cached_mnrl
    mini_batch_size: int = 16  # cached_mnrl only: memory-bound chunk of the big batch
    matryoshka_dims: tuple[int, ...] = ()
    mining: MiningSettings = field(default_factory=MiningSettings)
    lora: LoraSettings | None = None

    kind = "bi_encoder"

    def check(self) -> None:
        super().check()
        if self.loss not in ("mnrl", "cached_mnrl"):
            raise TrainingInputError(f"Unknown bi-encoder loss {self.loss!r}: use mnrl or cached_mnrl.")
        _within("Mini-batch size", self.mini_batch_size, 1, 1024)
        for dim in self.matryoshka_dims:
            _within("Matryoshka dimension", dim, 8, 8192)
        self.mining.check()
        if self.lora:
            self.lora.check()

    def as_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class CrossEncoderConfig(CommonSettings):
    # A fresh one-logit head trained for a few hundred steps barely moves at 2e-5; 5e-5 is the top of BERT's standard
    # fine-tuning grid (5e-5, 3e-5, 2e-5) and dev selection keeps the first stage if it does not help.
    learning_rate: float = 5e-5
    batch_size: int = 16
    loss: str = "bce"  # bce | lambda
    pos_weight: float = 0.0  # bce: weight of positives; 0 = negatives per positive (balances the classes)
    mining: MiningSettings = field(default_factory=lambda: MiningSettings(num_negatives=3))
    lora: LoraSettings | None = None

    kind = "cross_encoder"

    def check(self) -> None:
        super().check()
        if self.loss not in ("bce", "lambda"):
            raise TrainingInputError(f"Unknown reranker loss {self.loss!r}: use bce or lambda.")
        _within("Positive weight", self.pos_weight, 0.0, 100.0)
        self.mining.check()
        if self.mining.num_negatives < 1:
            raise TrainingInputError("A reranker needs at least one negative per query.")
        if self.lora:
            self.lora.check()

    def as_dict(self) -> dict[str, Any]:
        return _as_dict(self)


DISTILL_LOSSES = ("mse", "margin_mse", "listnet")
STUDENT_INITS = ("teacher", "base")
LAYER_PICKS = ("first", "spread")


@dataclass(frozen=True)
class DistillConfig(CommonSettings):
    """A smaller student reranker trained on a trained teacher reranker's scores over mined candidates.

    The teacher grades every candidate, so unlabelled relevant passages are scored as such rather than taught as
    negatives: mining keeps no relative margin. Candidates per query (``mining.num_negatives``) bound the teacher's
    scoring cost (~30 pairs/s for MiniLM-L6 on 2 CPU cores: 800 train queries x 8 pairs is ~4 minutes)."""

    learning_rate: float = 5e-5  # a truncated student has further to move than a fine-tune
    epochs: float = 2.0
    # the student's length: MiniLM at 2 layers x 128 tokens reranks 50 pairs ~6.7x faster than 6 x 256, the only
    # fp32 combination measured under 500 ms on 2 cores (bench/distill_speed.py); the teacher keeps its own length
    max_seq_length: int = 128
    batch_size: int = 16
    loss: str = "mse"  # mse (teacher logits) | margin_mse (positive - candidate margins) | listnet (teacher softmax)
    student_layers: int = 2  # transformer layers the student keeps; 0 = all of them
    # which: "first" (the bottom N, as Poor Man's BERT found robust) or "spread" (evenly spaced, always ending with
    # the top layer the scoring head was trained on, as DistilBERT and sentence-transformers' layer reduction do)
    layer_pick: str = "first"
    student_init: str = "teacher"  # teacher: its weights (and head); base: a bi-encoder with a fresh head
    fresh_head: bool = False  # teacher init only: re-initialise the scoring head
    tolerance_points: float = 1.0  # offered when dev nDCG@10 is at most this many points (x100) below the teacher's
    mining: MiningSettings = field(default_factory=lambda: MiningSettings(num_negatives=7, relative_margin=0.0))

    kind = "distill"

    def check(self) -> None:
        super().check()
        if self.loss not in DISTILL_LOSSES:
            raise TrainingInputError(f"Unknown distillation loss {self.loss!r}: use {', '.join(DISTILL_LOSSES)}.")
        if self.student_init not in STUDENT_INITS:
            raise TrainingInputError(f"Unknown student start {self.student_init!r}: use teacher or base.")
        if self.layer_pick not in LAYER_PICKS:
            raise TrainingInputError(f"Unknown layer choice {self.layer_pick!r}: use {' or '.join(LAYER_PICKS)}.")
        _within("Student layers", self.student_layers, 0, 48)
        _within("Tolerance (points)", self.tolerance_points, 0.0, 100.0)
        self.mining.check()
        _within("Candidates per query", self.mining.num_negatives, 1, 64)

    def as_dict(self) -> dict[str, Any]:
        return _as_dict(self)


def _as_dict(config: Any) -> dict[str, Any]:
    out = asdict(config)
    out["kind"] = config.kind
    return out


TrainingConfig = BiEncoderConfig | CrossEncoderConfig | DistillConfig


def config_from_dict(kind: str, values: dict[str, Any]) -> TrainingConfig:
    """Rebuild a config from ``as_dict`` output (what a run stores)."""
    values = {k: v for k, v in values.items() if k != "kind"}
    mining = MiningSettings(**values.pop("mining", {}) or {})
    lora_values = values.pop("lora", None)
    if kind == "distill":
        if lora_values:
            raise TrainingInputError("Distillation trains a full student; LoRA is not offered for it.")
        return DistillConfig(**values, mining=mining)
    lora = (
        LoraSettings(**{**lora_values, "target_modules": tuple(lora_values["target_modules"])}) if lora_values else None
    )
    if "matryoshka_dims" in values:
        values["matryoshka_dims"] = tuple(values["matryoshka_dims"])
    cls = {"bi_encoder": BiEncoderConfig, "cross_encoder": CrossEncoderConfig}.get(kind)
    if cls is None:
        raise TrainingInputError(f"Unknown training kind {kind!r}.")
    return cls(**values, mining=mining, lora=lora)


def _within(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise TrainingInputError(f"{name} must be between {low:g} and {high:g} (got {value!r}).")

"""Django-free training functions on tiny models built from a config (seconds on 2 cores)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.ml import train as train_mod
from training.ml.adapters import check_adapter_base, load_adapter
from training.ml.config import BiEncoderConfig, CrossEncoderConfig, LoraSettings, MiningSettings, TrainingInputError
from training.ml.data import SnapshotData
from training.ml.datasets import check_snapshot, prepare
from training.ml.train import TrainingHooks, overfitting_warnings, train_bi_encoder, train_cross_encoder
from workbench.retrieval.testing import build_tiny_encoder

REPO_ROOT = Path(__file__).resolve().parents[2]
EMBED_ATOL = 1e-5  # float32 reload of identical weights: only summation-order noise is allowed
WORDS = [
    "cell",
    "protein",
    "gene",
    "cancer",
    "virus",
    "immune",
    "brain",
    "heart",
    "lung",
    "blood",
    "drug",
    "dose",
    "trial",
    "mouse",
    "human",
    "liver",
    "bone",
]


def toy_snapshot(n: int = 40, *, dev_every: int = 5, test_every: int = 7) -> SnapshotData:
    """Each query shares a rare token and three words with its one relevant document: learnable by a tiny model."""
    rng = random.Random(0)
    docs = {f"d{i}": " ".join(rng.choice(WORDS) for _ in range(16)) + f" marker{i}" for i in range(n + 20)}
    queries = {f"q{i}": f"marker{i} " + " ".join(docs[f"d{i}"].split()[:3]) for i in range(n)}
    splits = {
        q: "dev" if i % dev_every == 0 else "test" if i % test_every == 0 else "train" for i, q in enumerate(queries)
    }
    return SnapshotData(
        content_hash="toy",
        queries=queries,
        splits=splits,
        qrels={q: {f"d{q[1:]}": 1} for q in queries},
        passages={d: [(i, t)] for i, (d, t) in enumerate(docs.items())},
    )


FAST = dict(batch_size=8, learning_rate=1e-3, max_seq_length=32, dev_corpus_max=50)


def test_bi_encoder_loss_decreases_and_artifact_reloads_identically(tiny_encoder_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    losses: list[tuple[int, float]] = []
    result = train_bi_encoder(
        toy_snapshot(),
        BiEncoderConfig(epochs=6, **FAST),
        base_path=tiny_encoder_path,
        output_dir=tmp_path / "bi",
        hooks=TrainingHooks(on_loss=lambda s, v: losses.append((s, v))),
    )
    assert result.steps > 0 and len(losses) >= 3
    assert np.mean([v for _, v in losses[-2:]]) < np.mean([v for _, v in losses[:2]])
    assert result.artifact_path == tmp_path / "bi"
    texts = ["marker3 cell", "a longer text about protein and gene"]
    reloaded = SentenceTransformer(str(result.artifact_path), device="cpu")
    np.testing.assert_allclose(reloaded.encode(texts), result.model.encode(texts), atol=EMBED_ATOL)
    manifest = json.loads((result.artifact_path / "manifest.json").read_text())
    assert manifest["kind"] == "bi_encoder" and manifest["snapshot_hash"] == "toy"
    assert manifest["parameters"]["mining"]["relative_margin"] == 0.05
    assert manifest["counts"]["train_pairs"] == result.counts["train_pairs"] > 0
    assert set(manifest["libraries"]) >= {"torch", "transformers", "sentence-transformers", "peft"}
    card = (result.artifact_path / "README.md").read_text()
    for needle in ("snapshot hash", "seed", "Intended use", "hardware", "training time", "base"):
        assert needle in card
    assert result.improved is (result.best_dev > result.base_dev + train_mod.MIN_GAIN)
    assert not list(tmp_path.glob("*.tmp-*")), "no temporary directory is left behind"


def test_same_seed_gives_the_same_metrics(tiny_encoder_path, tmp_path):
    runs = [
        train_bi_encoder(
            toy_snapshot(), BiEncoderConfig(max_steps=4, **FAST), base_path=tiny_encoder_path, output_dir=tmp_path / n
        )
        for n in ("a", "b")
    ]
    assert [s for s, _ in runs[0].dev_history] == [s for s, _ in runs[1].dev_history]
    assert [v for _, v in runs[0].dev_history] == pytest.approx([v for _, v in runs[1].dev_history], abs=1e-6)
    assert [v for _, v in runs[0].loss_history] == pytest.approx([v for _, v in runs[1].loss_history], abs=1e-4)


def test_lora_adapter_reloads_on_its_base_and_refuses_another(tiny_encoder_path, tmp_path):
    result = train_bi_encoder(
        toy_snapshot(),
        BiEncoderConfig(max_steps=6, lora=LoraSettings(rank=4, alpha=8), **FAST),
        base_path=tiny_encoder_path,
        output_dir=tmp_path / "lora",
    )
    files = {p.name for p in result.artifact_path.iterdir()}
    assert "adapter_model.safetensors" in files and "model.safetensors" not in files
    assert result.manifest["kind"] == "lora_adapter"
    texts = ["marker1 gene", "blood drug dose"]
    reloaded = load_adapter(result.artifact_path, tiny_encoder_path)
    np.testing.assert_allclose(reloaded.encode(texts), result.model.encode(texts), atol=EMBED_ATOL)
    other = build_tiny_encoder(tmp_path / "other", seed=1)
    with pytest.raises(TrainingInputError, match="trained on base"):
        check_adapter_base(result.artifact_path, other)


def test_reranker_trains_from_a_bi_encoder_base_with_a_fresh_head(tiny_encoder_path, tmp_path):
    from sentence_transformers import CrossEncoder

    losses: list[float] = []
    evals: list[dict] = []
    result = train_cross_encoder(
        toy_snapshot(),
        CrossEncoderConfig(epochs=2, **FAST),
        base_path=tiny_encoder_path,
        first_stage_path=tiny_encoder_path,
        output_dir=tmp_path / "ce",
        hooks=TrainingHooks(on_loss=lambda s, v: losses.append(v), on_eval=lambda s, m: evals.append(m)),
    )
    assert losses and evals and "eval_dev_base_ndcg@10" in evals[0]
    assert result.manifest["head"] == "fresh (one logit)" and result.manifest["kind"] == "cross_encoder"
    pairs = [("marker2 cell", "text about marker2"), ("gene", "bone liver")]
    reloaded = CrossEncoder(str(result.artifact_path), device="cpu")
    np.testing.assert_allclose(reloaded.predict(pairs), result.model.predict(pairs), atol=EMBED_ATOL)


def test_listwise_reranker_loss_runs(tiny_encoder_path, tmp_path):
    result = train_cross_encoder(
        toy_snapshot(),
        CrossEncoderConfig(max_steps=3, loss="lambda", **FAST),
        base_path=tiny_encoder_path,
        first_stage_path=tiny_encoder_path,
        output_dir=tmp_path / "ce",
    )
    assert result.steps == 3 and result.loss_history


def test_a_run_that_does_not_beat_its_base_writes_nothing_when_asked(tiny_encoder_path, tmp_path):
    # learning rate ~0: the model cannot move, so dev cannot improve
    result = train_bi_encoder(
        toy_snapshot(),
        BiEncoderConfig(max_steps=2, **{**FAST, "learning_rate": 1e-7}),
        base_path=tiny_encoder_path,
        output_dir=tmp_path / "bi",
        keep_if_not_improved=False,
    )
    assert result.improved is False and result.artifact_path is None
    assert "Does not beat its base" in result.verdict and "not offered" in result.verdict
    assert not (tmp_path / "bi").exists()


def test_a_failure_while_saving_leaves_no_half_artifact(tiny_encoder_path, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(train_mod, "write_card", boom)
    with pytest.raises(OSError, match="No space"):
        train_bi_encoder(
            toy_snapshot(), BiEncoderConfig(max_steps=1, **FAST), base_path=tiny_encoder_path, output_dir=tmp_path / "x"
        )
    assert list(tmp_path.iterdir()) == []


def test_a_hook_that_raises_aborts_the_run_and_writes_nothing(tiny_encoder_path, tmp_path):
    class Cancelled(Exception):
        pass

    def cancel(step, total, message):
        raise Cancelled()

    with pytest.raises(Cancelled):
        train_bi_encoder(
            toy_snapshot(),
            BiEncoderConfig(max_steps=5, **FAST),
            base_path=tiny_encoder_path,
            output_dir=tmp_path / "x",
            hooks=TrainingHooks(on_progress=cancel),
        )
    assert list(tmp_path.iterdir()) == []


def test_no_positives_is_refused():
    data = toy_snapshot()
    empty = SnapshotData("h", data.queries, data.splits, {q: {d: 0 for d in g} for q, g in data.qrels.items()}, {})
    with pytest.raises(TrainingInputError, match="no positive judgments"):
        check_snapshot(empty)


def test_train_queries_that_are_also_test_queries_are_left_out_or_refused():
    data = toy_snapshot()
    test_q = data.query_ids("test")[0]
    train_q = data.query_ids("train")[0]
    leaky = SnapshotData("h", {**data.queries, train_q: data.queries[test_q]}, data.splits, data.qrels, data.passages)
    prepared = prepare(leaky)
    assert train_q not in {p[0] for p in prepared.train_pairs}
    assert prepared.counts["train_queries_left_out_as_also_held_out"] == 1
    everything = SnapshotData("h", {q: "same text" for q in data.queries}, data.splits, data.qrels, data.passages)
    with pytest.raises(TrainingInputError, match="also a dev or test query"):
        check_snapshot(everything)


@pytest.mark.parametrize(
    "config",
    [
        BiEncoderConfig(learning_rate=1.0),
        BiEncoderConfig(epochs=0),
        BiEncoderConfig(batch_size=1),
        BiEncoderConfig(loss="triplet"),
        BiEncoderConfig(mining=MiningSettings(relative_margin=0.9)),
        BiEncoderConfig(mining=MiningSettings(num_negatives=5, range_min=48, range_max=50)),
        BiEncoderConfig(lora=LoraSettings(rank=0)),
        BiEncoderConfig(lora=LoraSettings(target_modules=())),
        CrossEncoderConfig(mining=MiningSettings(num_negatives=0)),
        CrossEncoderConfig(loss="mse"),
        CrossEncoderConfig(max_seq_length=8),
    ],
)
def test_hyperparameters_out_of_range_are_refused(config):
    with pytest.raises(TrainingInputError):
        config.check()


def test_overfitting_warning_when_dev_falls_while_loss_drops():
    loss = [(1, 2.0), (2, 1.5), (3, 1.0), (4, 0.5)]
    assert overfitting_warnings(loss, [(2, 0.50), (4, 0.40)])
    assert not overfitting_warnings(loss, [(2, 0.50), (4, 0.55)])
    assert not overfitting_warnings(loss, [(4, 0.5)])


SCRIPT = """
import sys
import training.ml
from training.ml import adapters, card, config, data, datasets, distill, train
leaked = sorted(name for name in sys.modules if name == "django" or name.startswith("django."))
assert not leaked, leaked
print("ok")
"""


def test_training_ml_never_imports_django():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp32")])
def test_training_precision_follows_native_bf16(monkeypatch, tmp_path: Path, native: bool, expected: str) -> None:  # type: ignore[no-untyped-def]
    import torch
    from sentence_transformers.cross_encoder.training_args import CrossEncoderTrainingArguments

    import workbench.retrieval.encoders as encoders

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(encoders, "cpu_has_fast_bf16", lambda: native)
    assert train_mod.mixed_precision() == expected and train_mod.hardware()["precision"] == expected
    args = train_mod._args(CrossEncoderTrainingArguments, CrossEncoderConfig(), tmp_path, 10, 5, None)
    assert args.bf16 is native


def test_an_isa_cap_below_bf16_trains_in_float32(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert train_mod.mixed_precision() == "fp32"


def test_dev_candidates_are_the_bases_top_documents_whatever_the_training_margin(tiny_encoder_path, tmp_path):  # type: ignore[no-untyped-def]
    """A relative margin and a skipped top keep likely unlabelled positives out of training; the dev corpus must
    still hold the base's own top documents, or it drops the base's confusers and flatters it."""
    from sentence_transformers import SentenceTransformer

    prepared = prepare(toy_snapshot())
    base = SentenceTransformer(str(tiny_encoder_path), device="cpu")
    strict = MiningSettings(num_negatives=1, range_min=3, range_max=10, relative_margin=0.4)
    assert train_mod.dev_mining(strict) == MiningSettings(
        num_negatives=1, range_min=0, range_max=20, relative_margin=0.0
    )
    mined, dev = train_mod.mine_train_and_dev(base, prepared, strict, str(tmp_path / "cache"), None, lambda _m: None)
    ids = list(prepared.corpus)
    docs = base.encode([prepared.corpus[d] for d in ids], normalize_embeddings=True)
    for q, text in prepared.dev_queries.items():
        scores = docs @ base.encode([text], normalize_embeddings=True)[0]
        ranked = [ids[i] for i in np.argsort(-scores, kind="stable") if ids[i] not in prepared.dev_relevant[q]]
        got = [d for d, _ in dev.get(q, [])]
        assert len(got) == train_mod.DEV_CANDIDATES and set(got) == set(ranked[: len(got)]), q
    # training negatives still honour the skip: never one of a train query's top 3
    train_text = {q: t for q, t, _ in prepared.train_pairs}
    for q, negatives in mined.items():
        scores = docs @ base.encode([train_text[q]], normalize_embeddings=True)[0]
        top3 = {ids[i] for i in np.argsort(-scores, kind="stable")[:3]}
        assert not top3 & {d for d, _ in negatives}, q

"""Distillation on tiny models built from a config: layer cutting, teacher scores, losses, refusals, the verdict."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from tests.training.test_ml import FAST, toy_snapshot
from training.ml.config import DistillConfig, MiningSettings, TrainingInputError, config_from_dict
from training.ml.datasets import prepare
from training.ml.distill import (
    DistillResult,
    check_teacher,
    kept_layers,
    model_layers,
    teacher_scores,
    train_distilled_reranker,
    truncate_layers,
)
from training.ml.train import TrainingHooks
from workbench.retrieval.testing import build_tiny_cross_encoder

SCORE_ATOL = 1e-5  # float32 reload of identical weights: only summation-order noise is allowed
PAIRS = [("marker2 cell", "cell protein marker2"), ("gene", "bone liver"), ("virus immune", "immune virus dose")]


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory, tiny_encoder_path):  # type: ignore[no-untyped-def]
    """A 3-layer tiny reranker (so a student can keep fewer) with seeded weights wide enough (initializer range 0.2)
    that its scores vary across pairs: a stand-in for a trained teacher, whose scores are all a student sees."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    root = tmp_path_factory.mktemp("teacher")
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_encoder_path))
    config = BertConfig(
        hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=37,
        vocab_size=len(tokenizer), max_position_embeddings=128, num_labels=1, initializer_range=0.2,
    )  # fmt: skip
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(str(root / "hf"))
    tokenizer.save_pretrained(str(root / "hf"))
    CrossEncoder(str(root / "hf"), device="cpu", max_length=64).save(str(root / "teacher"))
    return root / "teacher"


def _train_pairs() -> list[tuple[str, str]]:
    """The toy snapshot's (train query, positive) pairs and as many (train query, random document) pairs."""
    prepared = prepare(toy_snapshot())
    docs = sorted(prepared.corpus)
    rng = random.Random(1)
    return [(t, prepared.corpus[d]) for _, t, d in prepared.train_pairs] + [
        (t, prepared.corpus[rng.choice(docs)]) for _, t, _ in prepared.train_pairs
    ]


def test_cut_layers_reload_with_plain_cross_encoder_and_score_the_same(teacher_path, tmp_path):
    from sentence_transformers import CrossEncoder
    from torch.nn import Identity

    model = CrossEncoder(str(teacher_path), device="cpu", max_length=48)
    assert model.model.config.num_hidden_layers == 3
    assert truncate_layers(model, 1) == [0]
    model.save_pretrained(str(tmp_path / "cut"))
    reloaded = CrossEncoder(str(tmp_path / "cut"), device="cpu")
    assert len(reloaded.model.bert.encoder.layer) == 1 and reloaded.model.config.num_hidden_layers == 1
    assert reloaded.max_seq_length == 48 and model_layers(tmp_path / "cut") == 1
    np.testing.assert_allclose(reloaded.predict(PAIRS), model.predict(PAIRS), atol=SCORE_ATOL)
    full = CrossEncoder(str(teacher_path), device="cpu", max_length=48)
    gap = np.abs(full.predict(PAIRS, activation_fn=Identity()) - model.predict(PAIRS, activation_fn=Identity())).max()
    assert gap > 1e-3, "two layers fewer must change the trained teacher's scores"


def test_kept_layers_first_or_spread_to_the_top():
    assert kept_layers(6, 2) == [0, 1] and kept_layers(6, 2, "first") == [0, 1]
    assert kept_layers(6, 2, "spread") == [2, 5]
    assert kept_layers(6, 3, "spread") == [1, 3, 5]
    assert kept_layers(6, 1, "spread") == [5] and kept_layers(3, 2, "spread") == [1, 2]
    assert kept_layers(6, 6, "spread") == list(range(6)) == kept_layers(6, 9, "spread")
    for keep in range(1, 13):
        picked = kept_layers(12, keep, "spread")
        assert len(set(picked)) == keep and picked == sorted(picked) and picked[-1] == 11


def test_a_spread_cut_keeps_those_very_layers(teacher_path):
    import torch
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(teacher_path), device="cpu")
    original = [layer.state_dict() for layer in model.model.bert.encoder.layer]
    assert truncate_layers(model, 2, "spread") == [1, 2]
    assert model.model.config.num_hidden_layers == 2
    for layer, source in zip(model.model.bert.encoder.layer, (original[1], original[2]), strict=True):
        for name, tensor in layer.state_dict().items():
            assert torch.equal(tensor, source[name]), name


def test_teacher_scores_are_raw_logits_and_cached(tiny_cross_encoder_path, tmp_path):
    from sentence_transformers import CrossEncoder

    teacher = CrossEncoder(str(tiny_cross_encoder_path), device="cpu")
    scores = teacher_scores(teacher, PAIRS, cache_dir=tmp_path, fingerprint="t")
    sigmoid = teacher.predict(PAIRS)
    np.testing.assert_allclose(1 / (1 + np.exp(-np.array(scores))), sigmoid, atol=1e-5)
    assert len(list(tmp_path.glob("teacher-scores-*.npy"))) == 1

    class NoScoring:
        max_seq_length = teacher.max_seq_length

        def eval(self):  # type: ignore[no-untyped-def]
            return self

        def predict(self, *a, **k):  # type: ignore[no-untyped-def]
            raise AssertionError("the cache should have answered")

    assert teacher_scores(NoScoring(), PAIRS, cache_dir=tmp_path, fingerprint="t") == pytest.approx(scores, abs=1e-6)


def test_the_student_learns_the_teachers_scores(teacher_path, tiny_encoder_path, tmp_path):
    """All layers kept but a fresh head: the student starts uncorrelated with its teacher and must learn the
    teacher's logits from the MSE labels (a mislabelled pair, a sigmoid where logits belong, would show here)."""
    from scipy.stats import spearmanr
    from sentence_transformers import CrossEncoder
    from torch.nn import Identity

    losses: list[float] = []
    evals: list[dict] = []
    result = train_distilled_reranker(
        toy_snapshot(),
        DistillConfig(
            student_layers=0, fresh_head=True, epochs=3, **{**FAST, "learning_rate": 2e-3, "max_seq_length": 64}
        ),
        teacher_path=teacher_path,
        first_stage_path=tiny_encoder_path,
        output_dir=tmp_path / "student",
        hooks=TrainingHooks(on_loss=lambda s, v: losses.append(v), on_eval=lambda s, m: evals.append(m)),
    )
    assert isinstance(result, DistillResult) and result.manifest["head"] == "fresh (one logit)"
    assert len(losses) >= 3 and np.mean(losses[-2:]) < 0.5 * np.mean(losses[:2]), losses
    assert "eval_dev_teacher_ndcg@10" in evals[0] and "eval_dev_ndcg@10" in evals[0]
    assert result.student_layers == 3 == result.teacher_layers
    assert result.base_dev == result.teacher_dev is not None and result.best_dev is not None
    assert result.speed["pairs"] > 0 and result.speed["ratio"] > 0
    pairs = _train_pairs()
    teacher = CrossEncoder(str(teacher_path), device="cpu").predict(pairs, activation_fn=Identity())
    student = CrossEncoder(str(result.artifact_path), device="cpu").predict(pairs, activation_fn=Identity())
    assert spearmanr(teacher, student).statistic > 0.5


@pytest.mark.parametrize("loss", ["listnet", "margin_mse"])
def test_the_listwise_and_margin_losses_train_a_cut_student(teacher_path, tiny_encoder_path, tmp_path, loss):
    result = train_distilled_reranker(
        toy_snapshot(),
        DistillConfig(loss=loss, student_layers=1, max_steps=3, **FAST),
        teacher_path=teacher_path,
        first_stage_path=tiny_encoder_path,
        output_dir=tmp_path / "student",
    )
    assert result.steps == 3 and result.loss_history and result.student_layers == 1
    assert result.manifest["distillation"]["loss"] == loss


def test_artifact_manifest_and_card_carry_teacher_and_student(teacher_path, tiny_encoder_path, tmp_path):
    from sentence_transformers import CrossEncoder

    result = train_distilled_reranker(
        toy_snapshot(),
        DistillConfig(student_layers=2, max_steps=3, tolerance_points=100, **{**FAST, "max_seq_length": 24}),
        teacher_path=teacher_path,
        first_stage_path=tiny_encoder_path,
        output_dir=tmp_path / "student",
    )
    assert result.improved is True  # a 100-point tolerance offers any student
    reloaded = CrossEncoder(str(result.artifact_path), device="cpu")
    assert reloaded.model.config.num_hidden_layers == 2 and reloaded.max_seq_length == 24
    np.testing.assert_allclose(reloaded.predict(PAIRS), result.model.predict(PAIRS), atol=SCORE_ATOL)
    manifest = json.loads((result.artifact_path / "manifest.json").read_text())
    d = manifest["distillation"]
    assert manifest["kind"] == "cross_encoder" and manifest["head"] == "from the teacher"
    assert d["teacher_layers"] == 3 and d["student_layers"] == 2 and d["student_max_length"] == 24
    assert d["teacher_dev"] == pytest.approx(result.teacher_dev) and d["student_dev"] == pytest.approx(result.best_dev)
    assert d["speed"]["ratio"] == result.speed["ratio"]
    card = (result.artifact_path / "README.md").read_text()
    for needle in ("Distillation (teacher vs student)", "| transformer layers | 3 | 2 |", "faster per pair"):
        assert needle in card
    assert "Student (2 layers, 24 tokens)" in result.verdict and "vs teacher" in result.verdict
    assert "faster per pair" in result.verdict and "offered as a faster reranker" in result.verdict


def test_a_student_from_the_base_gets_a_fresh_head(teacher_path, tiny_encoder_path, tmp_path):
    result = train_distilled_reranker(
        toy_snapshot(),
        DistillConfig(student_init="base", student_layers=1, max_steps=2, loss="listnet", **FAST),
        teacher_path=teacher_path,
        base_path=tiny_encoder_path,
        first_stage_path=tiny_encoder_path,
        output_dir=tmp_path / "student",
    )
    assert result.manifest["head"] == "fresh (one logit)" and result.student_layers == 1


def test_a_student_too_far_below_the_teacher_is_not_offered():
    result = DistillResult(
        artifact_path=None, improved=False, dev_metric="ndcg@10", base_dev=0.72, best_dev=0.70, steps=3,
        train_seconds=1.0, total_seconds=2.0, teacher_dev=0.72, tolerance_points=1.0, student_layers=2,
        teacher_layers=6, student_max_length=128, teacher_max_length=256,
        speed={"ratio": 6.2, "pairs": 32, "device": "cpu"},
    )  # fmt: skip
    assert result.delta_points == pytest.approx(-2.0)
    assert result.verdict.startswith(
        "Student (2 layers, 128 tokens) dev ndcg@10 0.7000 vs teacher 0.7200 (-2.0 points)"
    )
    assert "6.2x faster per pair" in result.verdict and "measured on 32 pairs" in result.verdict
    assert "not offered" in result.verdict


def test_a_bi_encoder_is_refused_as_teacher(tiny_encoder_path, tmp_path):
    with pytest.raises(TrainingInputError, match="must be a trained cross-encoder"):
        check_teacher(tiny_encoder_path)
    with pytest.raises(TrainingInputError, match="must be a trained cross-encoder"):
        train_distilled_reranker(
            toy_snapshot(), DistillConfig(max_steps=1, **FAST), teacher_path=tiny_encoder_path,
            first_stage_path=tiny_encoder_path, output_dir=tmp_path / "s",
        )  # fmt: skip
    assert not (tmp_path / "s").exists()


def test_more_student_layers_than_the_teacher_has_are_refused(tmp_path, tiny_encoder_path):
    teacher = build_tiny_cross_encoder(tmp_path / "t")  # 2 layers
    with pytest.raises(TrainingInputError, match="cannot keep 3 layers: the teacher has only 2"):
        train_distilled_reranker(
            toy_snapshot(), DistillConfig(student_layers=3, max_steps=1, **FAST), teacher_path=teacher,
            first_stage_path=tiny_encoder_path, output_dir=tmp_path / "s",
        )  # fmt: skip


@pytest.mark.parametrize(
    "config",
    [
        DistillConfig(loss="bce"),
        DistillConfig(student_init="random"),
        DistillConfig(student_layers=-1),
        DistillConfig(student_layers=49),
        DistillConfig(tolerance_points=-0.5),
        DistillConfig(mining=MiningSettings(num_negatives=0)),
        DistillConfig(mining=MiningSettings(num_negatives=65, range_max=100)),
        DistillConfig(max_seq_length=8),
    ],
)
def test_distillation_settings_out_of_range_are_refused(config):
    with pytest.raises(TrainingInputError):
        config.check()


def test_the_config_round_trips_and_refuses_lora():
    config = DistillConfig(student_layers=3, loss="margin_mse", fresh_head=True)
    assert config_from_dict("distill", config.as_dict()) == config
    assert config.mining.relative_margin == 0.0  # the teacher grades every candidate: no margin needed
    with pytest.raises(TrainingInputError, match="LoRA"):
        config_from_dict("distill", {**config.as_dict(), "lora": {"rank": 4}})

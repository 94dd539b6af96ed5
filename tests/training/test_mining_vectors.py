"""Mining from stored vectors (an index built with the mining model) instead of embedding the collection again."""

from __future__ import annotations

import numpy as np
import pytest

from tests.training.test_ml import FAST, toy_snapshot
from training.ml.config import BiEncoderConfig, MiningSettings
from training.ml.datasets import DocumentVectors, mine, prepare
from training.ml.train import TrainingHooks, train_bi_encoder


class CountingModel:
    """A SentenceTransformer that counts the documents it is asked to embed."""

    def __init__(self, model) -> None:  # type: ignore[no-untyped-def]
        self.model, self.documents = model, 0

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.model, name)

    def encode_document(self, sentences, **kwargs):  # type: ignore[no-untyped-def]
        self.documents += len(sentences)
        return self.model.encode_document(sentences, **kwargs)


@pytest.fixture
def tiny(tiny_encoder_path):  # type: ignore[no-untyped-def]
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_encoder_path), device="cpu")


def _vectors(model, corpus: dict[str, str], ids: list[str]) -> DocumentVectors:  # type: ignore[no-untyped-def]
    return DocumentVectors(ids, model.encode_document([corpus[d] for d in ids], normalize_embeddings=True))


def test_mining_with_stored_vectors_finds_the_same_negatives_and_embeds_only_the_rest(tiny) -> None:
    prepared = prepare(toy_snapshot())
    corpus = prepared.corpus
    settings = MiningSettings(num_negatives=3, range_max=20, relative_margin=0.05)
    plain = CountingModel(tiny)
    expected = mine(plain, prepared.train_pairs, corpus, settings)
    assert plain.documents == len(set(corpus.values()))  # the whole collection, once

    ids = sorted(corpus)
    stored_ids = ids[: len(ids) - 5]  # an index that lacks five documents (added after it was built)
    stored = _vectors(tiny, corpus, stored_ids)
    counted = CountingModel(tiny)
    got = mine(counted, prepared.train_pairs, corpus, settings, known=stored)
    assert counted.documents == 5  # only the documents the index lacks
    assert got.keys() == expected.keys()
    for q in expected:
        assert [d for d, _ in got[q]] == [d for d, _ in expected[q]]
        np.testing.assert_allclose([s for _, s in got[q]], [s for _, s in expected[q]], atol=1e-5)


def test_stored_vectors_of_another_dimension_are_refused(tiny) -> None:
    prepared = prepare(toy_snapshot())
    wrong = DocumentVectors(["d0"], np.ones((1, 7), dtype=np.float32))
    with pytest.raises(ValueError, match="dimension 7"):
        mine(tiny, prepared.train_pairs, prepared.corpus, MiningSettings(), known=wrong)
    with pytest.raises(ValueError, match="2 document ids"):
        DocumentVectors(["d0", "d1"], np.ones((1, 7), dtype=np.float32))


def test_bi_encoder_training_reads_stored_vectors_and_says_so(tiny, tiny_encoder_path, tmp_path) -> None:
    data = toy_snapshot()
    corpus = prepare(data).corpus
    lines: list[str] = []
    result = train_bi_encoder(
        data,
        BiEncoderConfig(epochs=1, **FAST),
        base_path=tiny_encoder_path,
        output_dir=tmp_path / "bi",
        hooks=TrainingHooks(on_log=lines.append),
        mining_vectors=_vectors(tiny, corpus, sorted(corpus)),
    )
    assert result.steps > 0
    assert any(f"reads {len(corpus)} of {len(corpus)} documents' vectors" in line for line in lines), lines

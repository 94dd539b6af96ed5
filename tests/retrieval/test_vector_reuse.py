"""A rebuild reads back the vectors an earlier index of the same weights computed for the same texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.retrieval import index_build
from workbench.retrieval.encoders import encode_passages, load_encoder
from workbench.retrieval.faiss_index import load_dense_index
from workbench.retrieval.index_build import BuildProgress, build_index
from workbench.retrieval.search import LoadedIndex, clear_index_cache
from workbench.retrieval.sentence_vectors import SentenceVectorStore, sentence_spans_of
from workbench.retrieval.testing import build_tiny_encoder
from workbench.retrieval.vector_reuse import earlier_vectors

BODIES = [
    "Aspirin reduces the risk of heart attack in older adults. It also raises the risk of bleeding in the stomach.",
    "Statins lower LDL cholesterol. Cardiovascular events fell by a third in the treated group.",
    "Regular exercise improves insulin sensitivity in type 2 diabetes, as shown by clamp studies in 40 adults.",
    "Vitamin D supplementation did not change the bone fracture risk of the elderly in this trial.",
]
FIRST = [(1 + i, f"Title {i}\n{body}") for i, body in enumerate(BODIES)]
# The corpus after an import: passage 0 unchanged (new id), 1 edited, 2 removed, 3 unchanged, one passage new.
EDITED = BODIES[1].replace("a third", "a quarter")
NEW = "Microglia shape synaptic pruning in the developing brain of mice, a study of 12 litters found."
SECOND_BODIES = [BODIES[0], EDITED, BODIES[3], NEW]
SECOND = [
    (11, f"Title 0\n{BODIES[0]}"),
    (12, f"Title 1\n{EDITED}"),
    (13, f"Title 3\n{BODIES[3]}"),
    (14, f"Title 9\n{NEW}"),
]


def _vectors(directory: Path) -> np.ndarray:
    dense = load_dense_index(directory)
    return np.array(dense.stored_vectors())  # a copy: the stored view lives only as long as the index object


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _build(out: Path, passages: list, encoder: Path, bodies: list[str], **kwargs):  # type: ignore[no-untyped-def]
    logs: list[str] = []
    reports: list[BuildProgress] = []
    manifest = build_index(
        out_dir=out,
        passages=passages,
        encoder_path=encoder,
        batch_size=2,
        precision="float32",  # bf16 autocast, where the CPU has it, could swap near-tied hits between builds
        sentence_texts=bodies,
        log=logs.append,
        progress_callback=reports.append,
        **kwargs,
    )
    return manifest, logs, reports


@pytest.fixture(scope="module")
def first(tiny_encoder_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reuse") / "v1"
    _build(out, FIRST, tiny_encoder_path, BODIES)
    return out


def test_a_rebuild_embeds_only_the_texts_the_earlier_index_did_not(first: Path, tiny_encoder_path: Path, tmp_path,
                                                                    monkeypatch) -> None:  # fmt: skip
    encoded: list[str] = []
    real = index_build.encode_passages

    def spy(model, texts, **kwargs):  # type: ignore[no-untyped-def]
        encoded.extend(texts)
        return real(model, texts, **kwargs)

    monkeypatch.setattr(index_build, "encode_passages", spy)
    earlier, why = earlier_vectors(first, label="corpus v1")
    assert earlier is not None and why == ""
    manifest, logs, reports = _build(tmp_path / "v2", SECOND, tiny_encoder_path, SECOND_BODIES, earlier=earlier)

    # Exactly the edited and the new passage are embedded, and their sentences (an edited passage's spans moved).
    new_sentences, _, _ = sentence_spans_of(SECOND_BODIES)
    unseen, _, _ = sentence_spans_of([EDITED, NEW])
    assert encoded == [SECOND[1][1], SECOND[3][1], *unseen]
    metrics = manifest["metrics"]
    assert metrics["reused_vectors"] == 2
    assert metrics["reused_sentence_vectors"] == len(new_sentences) - len(unseen)
    assert manifest["parameters"]["reused_from"] == "corpus v1"
    assert any("reused the vectors of 2 of 4 passages from corpus v1" in line for line in logs)
    embedding = [r for r in reports if r.stage == "embedding"]
    assert {r.total for r in embedding} == {2}

    # Reused rows are the earlier index's rows exactly (copied, not recomputed).
    old = _vectors(first)
    new = _vectors(tmp_path / "v2")
    np.testing.assert_array_equal(new[0], old[0])
    np.testing.assert_array_equal(new[2], old[3])
    old_store = SentenceVectorStore(first, passage_count=4)
    new_store = SentenceVectorStore(tmp_path / "v2", passage_count=4)
    kept = old_store.for_row(0, len(BODIES[0]))
    assert kept and new_store.for_row(0, len(BODIES[0])).keys() == kept.keys()
    for span, vector in new_store.for_row(0, len(BODIES[0])).items():
        np.testing.assert_array_equal(vector, kept[span])

    # The rebuild is what a build from scratch gives, to float32 tolerance (other batches change the last bits).
    _build(tmp_path / "scratch", SECOND, tiny_encoder_path, SECOND_BODIES)
    np.testing.assert_allclose(new, _vectors(tmp_path / "scratch"), atol=1e-4)
    clear_index_cache()
    a, b = LoadedIndex(tmp_path / "v2"), LoadedIndex(tmp_path / "scratch")
    for query in ("aspirin bleeding", "cholesterol", "microglia"):
        hits_a = a.search(query, mode="hybrid", k=4).hits
        hits_b = b.search(query, mode="hybrid", k=4).hits
        assert [h.passage_id for h in hits_a] == [h.passage_id for h in hits_b]
    fresh_store = SentenceVectorStore(tmp_path / "scratch", passage_count=4)
    for row, body in enumerate(SECOND_BODIES):
        reused, scratch_vectors = new_store.for_row(row, len(body)), fresh_store.for_row(row, len(body))
        assert reused.keys() == scratch_vectors.keys()
        for span, vector in reused.items():
            assert float(vector @ scratch_vectors[span]) > 0.999  # float16 storage


def test_the_same_corpus_again_embeds_nothing(first: Path, tiny_encoder_path: Path, tmp_path: Path) -> None:
    earlier, _ = earlier_vectors(first, label="corpus v1")
    manifest, logs, reports = _build(
        tmp_path / "hnsw", FIRST, tiny_encoder_path, BODIES, earlier=earlier, index_type="hnsw"
    )
    assert manifest["metrics"]["reused_vectors"] == 4
    assert manifest["metrics"]["embedding_passages_per_s"] is None  # nothing was embedded: no rate to report
    assert manifest["metrics"]["reused_sentence_vectors"] == manifest["sentence_count"]
    assert not any(line.startswith("embedding ") for line in logs)
    np.testing.assert_array_equal(_vectors(tmp_path / "hnsw"), _vectors(first))
    fractions = [r.fraction for r in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # The HNSW index lends its vectors in turn.
    again, why = earlier_vectors(tmp_path / "hnsw", label="corpus v2")
    assert again is not None and why == ""


def test_vectors_of_other_weights_are_never_reused(first: Path, tmp_path: Path) -> None:
    other = build_tiny_encoder(tmp_path / "other-encoder", seed=1)
    earlier, _ = earlier_vectors(first, label="corpus v1")
    manifest, logs, _ = _build(tmp_path / "v2", FIRST, other, BODIES, earlier=earlier)
    assert manifest["metrics"]["reused_vectors"] == 0 and manifest["metrics"]["reused_sentence_vectors"] == 0
    assert manifest["parameters"]["reused_from"] is None
    assert "embedding every passage: corpus v1 was embedded with other weights" in logs
    fresh = encode_passages(load_encoder(other), [t for _, t in FIRST], precision="float32")
    assert _cosines(_vectors(tmp_path / "v2"), fresh).min() > 0.999
    assert _cosines(_vectors(first), fresh).max() < 0.99  # the earlier vectors would have been wrong


def test_indexes_that_cannot_lend_say_why(first: Path, tiny_encoder_path: Path, tmp_path: Path) -> None:
    build_index(out_dir=tmp_path / "bare", passages=FIRST, encoder_path=tiny_encoder_path, store_texts=False)
    assert earlier_vectors(tmp_path / "bare", label="v2") == (None, "v2 did not keep its passage texts")
    none, why = earlier_vectors(tmp_path / "missing", label="v3")
    assert none is None and why.startswith("v3 could not be read")

"""Sentence vectors stored at index build: what is stored, how it is looked up, and that answers use it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluation.answering import ExtractiveGenerator, RetrievedPassage
from workbench.retrieval.encoders import encode_passages, encode_query
from workbench.retrieval.errors import OperationCancelled, RetrievalError
from workbench.retrieval.index_build import BuildProgress, build_index
from workbench.retrieval.search import LoadedIndex
from workbench.retrieval.sentence_vectors import (
    SentenceVectorStore,
    build_sentence_vectors,
    has_sentence_vectors,
    sentence_spans_of,
)
from workbench.retrieval.sentences import MIN_CITABLE_CHARS, citable_spans

BODIES = [
    "Aspirin reduces the risk of heart attack in older adults. It also raises the risk of bleeding in the stomach.",
    "Statins lower LDL cholesterol. Short one. Cardiovascular events fell by a third in the treated group.",
    "Tiny.",  # no citable sentence at all
    "Regular exercise improves insulin sensitivity in type 2 diabetes, as shown by clamp studies in 40 adults.",
]
PASSAGES = [(201 + i, f"Title {i}\n{body}") for i, body in enumerate(BODIES)]


def test_citable_spans_drop_short_sentences_and_a_leading_fragment() -> None:
    text = "ending of a sentence cut by chunking. Short one. A second full sentence that is long enough."
    spans = [s.of(text) for s in citable_spans(text)]
    assert spans == ["ending of a sentence cut by chunking.", "A second full sentence that is long enough."]
    assert [s.of(text) for s in citable_spans(text, starts_mid_sentence=True)] == spans[1:]
    assert all(len(s) >= MIN_CITABLE_CHARS for s in spans)


def test_sentence_spans_are_laid_out_by_passage_row() -> None:
    sentences, spans, rows = sentence_spans_of(BODIES)
    assert rows.tolist() == [0, 2, 4, 4, 5]  # "Short one." is too short, "Tiny." has nothing citable
    assert [BODIES[0][a:b] for a, b in spans[0:2]] == sentences[0:2]
    assert sentences[2] == "Statins lower LDL cholesterol."
    assert spans.dtype == np.int32 and spans.shape == (5, 2)


@pytest.fixture(scope="module")
def built(tiny_encoder_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[BuildProgress]]:
    out = tmp_path_factory.mktemp("sentences") / "v1"
    reports: list[BuildProgress] = []
    manifest = build_index(
        out_dir=out,
        passages=PASSAGES,
        encoder_path=tiny_encoder_path,
        batch_size=2,
        sentence_texts=BODIES,
        progress_callback=reports.append,
    )
    return out, manifest, reports


def test_build_stores_unit_float16_vectors_of_every_citable_sentence(built, tiny_encoder_path: Path) -> None:
    out, manifest, reports = built
    assert has_sentence_vectors(out)
    assert manifest["sentence_count"] == 5 and manifest["metrics"]["sentence_seconds"] >= 0
    assert "sentences" in [r.stage for r in reports]
    fractions = [r.fraction for r in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    store = SentenceVectorStore(out, passage_count=4)
    assert store.vectors.dtype == np.float16 and store.vectors.shape == (5, 32)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(store.vectors, np.float32), axis=1), 1.0, atol=2e-3)
    # The same vectors as embedding the sentences now, to float16 precision (batching may differ in the last bits).
    index = LoadedIndex(out)
    sentences, _, _ = sentence_spans_of(BODIES)
    fresh = encode_passages(index.encoder, sentences)
    stored = np.asarray(store.vectors, np.float32)
    cosine = (stored * fresh).sum(axis=1) / np.linalg.norm(fresh, axis=1)
    assert cosine.min() > 0.999


def test_lookup_by_passage_id_checks_the_text(built) -> None:
    index = LoadedIndex(built[0])
    vectors = index.stored_sentence_vectors(201, BODIES[0])
    assert sorted(vectors) == [(s.start, s.end) for s in citable_spans(BODIES[0])]
    assert index.stored_sentence_vectors(203, BODIES[2]) == {}  # nothing citable
    assert index.stored_sentence_vectors(201, BODIES[0] + " Edited since the build.") == {}  # text changed
    assert index.stored_sentence_vectors(999, "not in this index") == {}


def test_extractive_answers_read_the_stored_vectors(built) -> None:
    index = LoadedIndex(built[0])
    passages = [
        RetrievedPassage(n, pid, str(pid), "", body, 1.0 / n)
        for n, (pid, body) in enumerate(zip([p for p, _ in PASSAGES], BODIES, strict=True), start=1)
    ]
    embedded: list[str] = []

    def embed_texts(texts):  # type: ignore[no-untyped-def]
        embedded.extend(texts)
        return encode_passages(index.encoder, list(texts))

    def gen(stored: bool) -> ExtractiveGenerator:
        return ExtractiveGenerator(
            embed_query=lambda q: encode_query(index.encoder, q),
            embed_texts=embed_texts,
            stored_vectors=(lambda p: index.stored_sentence_vectors(p.passage_id, p.text)) if stored else None,
            passages_considered=4,
        )

    live, fast = gen(False), gen(True)
    query = "does aspirin cause stomach bleeding"
    a_live = live.generate(query, passages, threshold=-1.0)
    assert len(embedded) == 5 and live.sentences_embedded == 5
    embedded.clear()
    a_fast = fast.generate(query, passages, threshold=-1.0)
    assert embedded == [] and fast.sentences_stored == 5 and fast.sentences_embedded == 0
    assert a_fast.confidence == pytest.approx(a_live.confidence, abs=2e-3)
    # A passage whose text is not the indexed one falls back to embedding just its sentences.
    changed = [*passages[:3], RetrievedPassage(4, 204, "204", "", BODIES[3] + " Added later to this passage.", 0.1)]
    fast.generate(query, changed, threshold=-1.0)
    assert embedded == [s.of(changed[3].text) for s in citable_spans(changed[3].text)]


def test_stored_vectors_need_the_encoder_that_made_them() -> None:
    with pytest.raises(ValueError, match="encoder"):
        ExtractiveGenerator(stored_vectors=lambda p: {})


def test_a_cancelled_sentence_stage_leaves_nothing(tiny_encoder_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "v1"
    stages: list[str] = []

    with pytest.raises(OperationCancelled):  # the passages go through, the sentences are cancelled
        build_index(
            out_dir=out, passages=PASSAGES, encoder_path=tiny_encoder_path, batch_size=1, sentence_texts=BODIES,
            progress_callback=lambda p: stages.append(p.stage), cancel_check=lambda: "sentences" in stages,
        )  # fmt: skip
    assert "embedding" in stages
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_misaligned_sentence_texts_are_refused(tiny_encoder_path: Path, tmp_path: Path) -> None:
    with pytest.raises(RetrievalError, match="3 sentence texts for 4 passages"):
        build_index(
            out_dir=tmp_path / "v1", passages=PASSAGES, encoder_path=tiny_encoder_path, sentence_texts=BODIES[:3]
        )


def test_a_store_that_does_not_match_its_index_is_refused(built) -> None:
    with pytest.raises(RetrievalError, match="do not match"):
        SentenceVectorStore(built[0], passage_count=5)


def test_no_citable_sentence_anywhere_builds_an_empty_store() -> None:
    store = build_sentence_vectors(["Tiny.", "Also."], lambda texts: pytest.fail("nothing to embed"))
    assert store.sentence_count == 0 and store.rows.tolist() == [0, 0, 0]

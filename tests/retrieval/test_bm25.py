from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.retrieval.bm25 import BM25Params, build_bm25, load_bm25
from workbench.retrieval.errors import RetrievalError

TEXTS = [
    "the cat sat on the mat",
    "dogs are running in the park",
    "cats and dogs living together",
    "quantum physics of cats",
    "",
]
IDS = [10, 20, 30, 40, 50]


@pytest.fixture(scope="module")
def index():
    return build_bm25(IDS, TEXTS)


def test_search_ranks_matching_documents(index) -> None:
    ids, scores = index.search("dogs", 10)
    assert set(ids.tolist()) == {20, 30}
    assert np.all(np.diff(scores) <= 0)


def test_documents_without_query_terms_are_not_returned(index) -> None:
    assert index.search("zebra", 5)[0].size == 0
    assert index.search("the and of", 5)[0].size == 0  # stopwords only


def test_ties_are_broken_by_passage_id() -> None:
    index = build_bm25([7, 3, 5], ["apple pie", "apple pie", "apple pie"])
    ids, scores = index.search("apple", 2)
    assert ids.tolist() == [3, 5]
    assert scores[0] == scores[1]


def test_allowed_rows_filter(index) -> None:
    ids, _ = index.search("dogs cats", 10, allowed_rows=np.array([2, 3]))
    assert set(ids.tolist()) == {30, 40}


def test_save_and_load_round_trip(index, tmp_path: Path) -> None:
    index.save(tmp_path / "bm25")
    loaded = load_bm25(tmp_path / "bm25")
    for query in ("dogs cats", "quantum", "mat"):
        a, sa = index.search(query, 3)
        b, sb = loaded.search(query, 3)
        assert a.tolist() == b.tolist()
        np.testing.assert_allclose(sa, sb)
    assert loaded.params == index.params


def test_params_are_recorded_and_stemmer_resolved(index) -> None:
    assert index.params.k1 == 1.2 and index.params.b == 0.75
    try:
        import Stemmer  # noqa: F401

        assert index.params.stemmer == "pystemmer-english"
    except ImportError:
        assert index.params.stemmer is None


def test_build_errors() -> None:
    with pytest.raises(RetrievalError, match="no passages"):
        build_bm25([], [])
    with pytest.raises(RetrievalError, match="2 texts but 1 ids"):
        build_bm25([1], ["a b", "c d"])
    with pytest.raises(RetrievalError, match="k1"):
        build_bm25([1], ["a b"], BM25Params(b=2.0))


def test_load_rejects_other_directories(tmp_path: Path) -> None:
    with pytest.raises(RetrievalError, match="not a BM25 index"):
        load_bm25(tmp_path)

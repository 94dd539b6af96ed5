from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.retrieval import faiss_index
from workbench.retrieval.errors import OperationCancelled, RetrievalError
from workbench.retrieval.faiss_index import (
    IndexParams,
    auto_index_params,
    build_dense_index,
    load_dense_index,
    validate_params,
)

DIM = 32
N = 2000
PARAMS = {
    "flat": IndexParams("flat"),
    "hnsw": IndexParams("hnsw", hnsw_m=16, ef_construction=40, ef_search=64),
    "ivfpq": IndexParams("ivfpq", nlist=16, pq_m=16, nbits=8, nprobe=8),
    "ivfpq-refine": IndexParams("ivfpq", nlist=16, pq_m=8, nbits=8, nprobe=8, refine=8),
}
KINDS = list(PARAMS)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    # Clustered vectors (like real embeddings) rather than uniform noise, so approximate indexes behave normally.
    centres = rng.standard_normal((20, DIM))
    vectors = _unit(centres[rng.integers(0, 20, N)] + 0.3 * rng.standard_normal((N, DIM)))
    queries = _unit(vectors[:50] + 0.05 * rng.standard_normal((50, DIM)))
    ids = np.arange(N, dtype=np.int64) * 3 + 100  # passage ids differ from row numbers
    return vectors, queries, ids


def _exact(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]]


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


@pytest.mark.parametrize("kind", KINDS)
def test_build_save_load_search(kind: str, data, tmp_path: Path) -> None:
    vectors, queries, ids = data
    index, notes = build_dense_index(vectors, ids, PARAMS[kind])
    assert notes == [] and len(index) == N and index.dim == DIM
    index.save(tmp_path)
    loaded = load_dense_index(tmp_path)
    assert loaded.params == PARAMS[kind]
    found, scores = loaded.search(queries, 10)
    assert found.shape == scores.shape == (50, 10)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    truth = _exact(vectors, ids, queries, 10)
    minimum = {"flat": 1.0, "hnsw": 0.95, "ivfpq": 0.5, "ivfpq-refine": 0.9}[kind]
    assert _recall(found, truth) >= minimum
    again, _ = index.search(queries, 10)
    assert np.array_equal(found, again)  # the memory-mapped copy answers like the built one


def test_flat_is_exact_including_scores(data) -> None:
    vectors, queries, ids = data
    index, _ = build_dense_index(vectors, ids, PARAMS["flat"])
    found, scores = index.search(queries[0], 5)
    exact_scores = np.sort(queries[0] @ vectors.T)[::-1][:5]
    np.testing.assert_allclose(scores[0], exact_scores, rtol=1e-5)
    assert found[0][0] == _exact(vectors, ids, queries[:1], 1)[0][0]


def test_per_call_search_depth(data) -> None:
    vectors, queries, ids = data
    hnsw, _ = build_dense_index(vectors, ids, PARAMS["hnsw"])
    ivf, _ = build_dense_index(vectors, ids, PARAMS["ivfpq"])
    truth = _exact(vectors, ids, queries, 10)
    assert _recall(hnsw.search(queries, 10, ef_search=200)[0], truth) >= _recall(
        hnsw.search(queries, 10, ef_search=10)[0], truth
    )
    assert _recall(ivf.search(queries, 10, nprobe=16)[0], truth) >= _recall(ivf.search(queries, 10, nprobe=1)[0], truth)
    with pytest.raises(RetrievalError, match="nprobe must be between"):
        ivf.search(queries, 10, nprobe=17)
    with pytest.raises(RetrievalError, match="efSearch"):
        hnsw.search(queries, 10, ef_search=10**6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("exact_limit", [faiss_index.EXACT_FILTER_MAX_ROWS, 0])
def test_filtered_search_returns_only_allowed_ids(kind: str, exact_limit: int, data, monkeypatch) -> None:
    monkeypatch.setattr(faiss_index, "EXACT_FILTER_MAX_ROWS", exact_limit)  # 0: force FAISS's IDSelector path
    vectors, queries, ids = data
    index, _ = build_dense_index(vectors, ids, PARAMS[kind])
    allowed = set(ids[::5].tolist())
    rows = index.rows_for_ids(allowed | {-5, 10**9})  # unknown ids are ignored
    assert len(rows) == len(allowed)
    found, _ = index.search(queries[:5], 10, allowed_rows=rows)
    assert set(found.ravel().tolist()) <= allowed
    if not kind.startswith("ivfpq"):
        subset = np.array(sorted(allowed))
        truth = _exact(vectors[rows], subset, queries[:5], 10)
        assert _recall(found, truth) >= 0.9
    few = index.rows_for_ids([ids[3], ids[7]])
    found, scores = index.search(queries[:1], 5, allowed_rows=few)
    assert set(found[0][:2].tolist()) <= {ids[3], ids[7]}
    if not kind.startswith("ivfpq"):  # IVF may not visit the clusters of two arbitrary rows
        assert found[0][2:].tolist() == [-1, -1, -1] and np.isinf(scores[0][2:]).all()
    empty, _ = index.search(queries[:1], 5, allowed_rows=np.array([], dtype=np.int64))
    assert (empty == -1).all()


def test_dimension_mismatch_and_bad_input(data) -> None:
    vectors, queries, ids = data
    index, _ = build_dense_index(vectors, ids, PARAMS["flat"])
    with pytest.raises(RetrievalError, match="dimension mismatch"):
        index.search(np.ones((1, DIM + 1), np.float32), 5)
    with pytest.raises(RetrievalError, match="k must be"):
        index.search(queries, 0)
    with pytest.raises(RetrievalError, match="no vectors"):
        build_dense_index(np.empty((0, DIM), np.float32), [], PARAMS["flat"])
    with pytest.raises(RetrievalError, match="ids"):
        build_dense_index(vectors, ids[:-1], PARAMS["flat"])
    with pytest.raises(RetrievalError, match="unique"):
        build_dense_index(vectors[:2], [1, 1], PARAMS["flat"])


@pytest.mark.parametrize(
    ("params", "n", "message"),
    [
        (IndexParams("ivfpq", nlist=16, nprobe=32, pq_m=8), 5000, "nprobe .32. cannot exceed nlist .16."),
        (IndexParams("ivfpq", nlist=16, nprobe=4, pq_m=7), 5000, "must divide the vector dimension"),
        (IndexParams("ivfpq", nlist=64, nprobe=4, pq_m=8), 50, "at least nlist .64. vectors"),
        (IndexParams("ivfpq", nlist=4, nprobe=4, pq_m=8), 200, "at least 256 vectors"),
        (IndexParams("ivfpq", nlist=4, nprobe=4, pq_m=8, nbits=20), 5000, "nbits"),
        (IndexParams("ivfpq", nlist=4, nprobe=4, pq_m=8, refine=-1), 5000, "refine must be between"),
        (IndexParams("hnsw", hnsw_m=1), 5000, "M must be between"),
        (IndexParams("hnsw", hnsw_m=32, ef_construction=8), 5000, "efConstruction"),
        (IndexParams("annoy"), 5000, "index type must be one of"),
        (IndexParams("flat"), 0, "no vectors"),
    ],
)
def test_parameter_validation_errors(params: IndexParams, n: int, message: str) -> None:
    with pytest.raises(RetrievalError, match=message):
        validate_params(params, n, DIM)


def test_too_few_training_vectors_adjust_nlist_with_a_warning(data) -> None:
    params, notes = validate_params(IndexParams("ivfpq", nlist=100, nprobe=64, pq_m=8), 1000, DIM)
    assert (params.nlist, params.nprobe) == (25, 25)
    assert "using nlist 25" in notes[0]
    vectors, _, ids = data
    with pytest.warns(UserWarning, match="nlist"):
        index, notes = build_dense_index(vectors[:1000], ids[:1000], IndexParams("ivfpq", nlist=100, pq_m=8))
    assert index.params.nlist == 25 and notes


def test_auto_params_by_corpus_size() -> None:
    assert auto_index_params(10_000, 384)[0].index_type == "flat"
    params, reason = auto_index_params(1_000_000, 384)
    assert params.index_type == "hnsw" and "HNSW" in reason
    params, reason = auto_index_params(10_000_000, 384)
    assert params.index_type == "ivfpq" and params.pq_m == 48 and params.refine > 0
    assert validate_params(params, 10_000_000, 384) == (params, [])
    with pytest.raises(RetrievalError):
        auto_index_params(0, 384)


def test_params_dict_round_trip_and_unknown_keys() -> None:
    params = PARAMS["ivfpq"]
    assert params.to_dict() == {"index_type": "ivfpq", "nlist": 16, "pq_m": 16, "nbits": 8, "nprobe": 8, "refine": 0}
    assert IndexParams.from_dict({**params.to_dict()}) == params
    with pytest.raises(RetrievalError, match="unknown index parameters"):
        IndexParams.from_dict({"index_type": "hnsw", "efsearch": 10})
    with pytest.raises(RetrievalError, match="integers"):
        IndexParams.from_dict({"index_type": "hnsw", "ef_search": "many"})


def test_build_progress_and_cancel(data) -> None:
    vectors, _, ids = data
    calls: list[tuple[int, int]] = []
    build_dense_index(vectors, ids, PARAMS["flat"], progress_callback=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (N, N)
    with pytest.raises(OperationCancelled):
        build_dense_index(vectors, ids, PARAMS["hnsw"], cancel_check=lambda: True)


def test_load_rejects_other_directories(tmp_path: Path) -> None:
    with pytest.raises(RetrievalError, match="not a dense index directory"):
        load_dense_index(tmp_path)


def test_rows_for_ids_with_unsorted_ids(data) -> None:
    vectors, _, ids = data
    shuffled = np.random.default_rng(1).permutation(ids)
    index, _ = build_dense_index(vectors, shuffled, PARAMS["flat"])
    wanted = [int(shuffled[5]), int(shuffled[1234])]
    assert index.rows_for_ids(wanted).tolist() == [5, 1234]
    found, _ = index.search(vectors[1234], 1, allowed_rows=index.rows_for_ids(wanted))
    assert found[0][0] == shuffled[1234]


def test_row_positions_follow_the_order_asked_and_flag_missing_ids() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5, 8)).astype(np.float32)
    ids = np.array([40, 10, 30, 20, 50], dtype=np.int64)  # not ascending: the sorted lookup must map back
    dense, _ = build_dense_index(vectors, ids, IndexParams("flat"))
    rows, found = dense.row_positions(np.array([20, 99, 40, 10]))
    assert found.tolist() == [True, False, True, True]
    assert rows[found].tolist() == [3, 0, 1]
    assert dense.rows_for_ids({20, 99, 40}).tolist() == [0, 3]
    np.testing.assert_array_equal(dense.stored_vectors()[rows[found]], vectors[[3, 0, 1]])

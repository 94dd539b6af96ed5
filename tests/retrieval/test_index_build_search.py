from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workbench.retrieval.encoders import encode_passages, load_encoder
from workbench.retrieval.errors import OperationCancelled, QueryTooLongError, RetrievalError
from workbench.retrieval.index_build import BuildProgress, build_index
from workbench.retrieval.rerank import CrossEncoderReranker, Reranker
from workbench.retrieval.search import MAX_QUERY_CHARS, TIMING_STAGES, LoadedIndex, clear_index_cache, load_index
from workbench.retrieval.testing import build_tiny_encoder

PASSAGES = [
    (101, "Aspirin reduces the risk of heart attack in older adults."),
    (102, "Statins lower LDL cholesterol and cardiovascular events."),
    (103, "Regular exercise improves insulin sensitivity in type 2 diabetes."),
    (104, "Vitamin D supplementation and bone fracture risk in the elderly."),
    (105, "The BRCA1 gene is associated with breast cancer susceptibility."),
    (106, "Microglia shape synaptic pruning in the developing brain."),
    (107, "Heart failure outcomes with beta blockers after myocardial infarction."),
    (108, "Gut microbiota composition differs in obese and lean twins."),
    (109, "Aspirin use and colorectal cancer incidence: a cohort study."),
    (110, "Sleep deprivation impairs memory consolidation in students."),
]


class LengthReranker:
    """A deterministic reranker for tests: prefers shorter passages."""

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        return -np.array([len(p) for p in passages], dtype=np.float32)


@pytest.fixture(scope="module")
def built(tiny_encoder_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[BuildProgress]]:
    out = tmp_path_factory.mktemp("indexes") / "v1"
    reports: list[BuildProgress] = []
    logs: list[str] = []
    manifest = build_index(
        out_dir=out,
        passages=PASSAGES,
        encoder_path=tiny_encoder_path,
        batch_size=4,
        progress_callback=reports.append,
        log=logs.append,
        extra_manifest={"index_version_id": 7},
    )
    assert any("embedded 10 passages" in line for line in logs)
    return out, manifest, reports


@pytest.fixture(scope="module")
def index(built) -> LoadedIndex:
    clear_index_cache()
    return load_index(built[0])


def test_manifest_describes_the_build(built, tiny_encoder_path: Path) -> None:
    out, manifest, _ = built
    assert manifest["kind"] == "index"
    assert manifest["index_type"] == "flat"  # auto: tiny corpus
    assert manifest["passage_count"] == 10 and manifest["dimension"] == 32
    assert manifest["encoder"]["path"] == str(tiny_encoder_path.resolve())
    assert len(manifest["encoder"]["fingerprint"]) == 64
    assert manifest["parameters"]["dense"] == {"index_type": "flat"}
    assert manifest["parameters"]["bm25"]["k1"] == 1.2
    assert "auto_reason" in manifest["parameters"]
    metrics = manifest["metrics"]
    assert metrics["build_seconds"] > 0 and metrics["embedding_passages_per_s"] > 0
    assert manifest["index_version_id"] == 7
    names = {p.name for p in out.iterdir()}
    assert {"manifest.json", "faiss.index", "ids.npy", "bm25", "texts.bin"} <= names
    assert [p.name for p in out.parent.iterdir()] == ["v1"]  # no temporary directory left


def test_progress_reports(built) -> None:
    reports = built[2]
    stages = [r.stage for r in reports]
    assert stages[0] == "embedding" and stages[-1] == "writing"
    embedding = [r for r in reports if r.stage == "embedding"]
    assert [r.done for r in embedding] == [0, 4, 8, 10]
    assert all(r.total == 10 for r in embedding)
    assert embedding[-1].rate_per_s and embedding[-1].eta_s == 0
    fractions = [r.fraction for r in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_cancel_leaves_no_directory(tiny_encoder_path: Path, tmp_path: Path) -> None:
    with pytest.raises(OperationCancelled):
        build_index(
            out_dir=tmp_path / "v2", passages=PASSAGES, encoder_path=tiny_encoder_path, cancel_check=lambda: True
        )
    assert list(tmp_path.iterdir()) == []


def test_build_errors(tiny_encoder_path: Path, built, tmp_path: Path) -> None:
    with pytest.raises(RetrievalError, match="already exists"):
        build_index(out_dir=built[0], passages=PASSAGES, encoder_path=tiny_encoder_path)
    with pytest.raises(RetrievalError, match="corpus is empty"):
        build_index(out_dir=tmp_path / "x", passages=[], encoder_path=tiny_encoder_path)
    with pytest.raises(RetrievalError, match="unique"):
        build_index(out_dir=tmp_path / "x", passages=[(1, "a"), (1, "b")], encoder_path=tiny_encoder_path)
    with pytest.raises(RetrievalError, match="embeddings have shape"):
        build_index(
            out_dir=tmp_path / "x", passages=PASSAGES, encoder_path=tiny_encoder_path, embeddings=np.ones((10, 8))
        )
    assert list(tmp_path.iterdir()) == []


def test_precomputed_embeddings_and_explicit_type(tiny_encoder_path: Path, tmp_path: Path) -> None:
    vectors = encode_passages(load_encoder(tiny_encoder_path), [t for _, t in PASSAGES])
    manifest = build_index(
        out_dir=tmp_path / "hnsw",
        passages=PASSAGES,
        encoder_path=tiny_encoder_path,
        embeddings=vectors,
        index_type="hnsw",
        params={"hnsw_m": 8, "ef_construction": 16},
        store_texts=False,
    )
    assert manifest["parameters"]["dense"] == {
        "index_type": "hnsw",
        "hnsw_m": 8,
        "ef_construction": 16,
        "ef_search": 256,
    }
    assert manifest["parameters"]["precision"] == "precomputed"
    loaded = LoadedIndex(tmp_path / "hnsw")
    assert loaded.search("aspirin", mode="dense", k=3).hits
    with pytest.raises(RetrievalError, match="stores no passage texts"):
        loaded.search("aspirin", k=3, rerank=LengthReranker())
    texts = dict(PASSAGES)
    reranked = loaded.search("aspirin", k=3, rerank=LengthReranker(), passage_texts=lambda ids: [texts[i] for i in ids])
    assert len(reranked.hits) == 3


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_search_modes_return_ranked_hits_with_stage_scores(index: LoadedIndex, mode: str) -> None:
    result = index.search("aspirin heart attack", mode=mode, k=5)
    assert result.mode == mode and 0 < len(result.hits) <= 5
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    assert set(result.timings_ms) == set(TIMING_STAGES)
    assert result.timings_ms["total"] >= max(v for s, v in result.timings_ms.items() if s != "total")
    hit = result.hits[0]
    if mode == "dense":
        assert hit.dense_score == hit.score and hit.bm25_score is None and result.timings_ms["embed"] > 0
    elif mode == "bm25":
        assert hit.bm25_score == hit.score and hit.dense_score is None
        assert set(result.passage_ids) <= {101, 107, 109}  # BM25 only returns passages sharing a term
    else:
        assert hit.fused_score == hit.score and result.timings_ms["fuse"] > 0
        assert any(h.dense_score is not None and h.bm25_score is not None for h in result.hits)


def test_hybrid_ranks_keyword_and_dense_matches(index: LoadedIndex) -> None:
    result = index.search("aspirin", mode="hybrid", k=10, alpha=0.0)  # BM25 weight only
    assert result.passage_ids[:2] == [101, 109]


def test_reranking_with_a_tiny_cross_encoder(index: LoadedIndex, tiny_cross_encoder_path: Path) -> None:
    reranker = CrossEncoderReranker(tiny_cross_encoder_path, batch_size=4, max_length=64)
    assert isinstance(reranker, Reranker)
    result = index.search("aspirin heart attack", mode="hybrid", k=3, rerank=reranker, rerank_top_n=6)
    assert len(result.hits) == 3 and result.params["rerank_candidates"] == 6
    assert all(h.rerank_score is not None and h.score == h.rerank_score for h in result.hits)
    assert result.timings_ms["rerank"] > 0


@pytest.mark.parametrize("fast_bf16", [True, False])
def test_cross_encoder_auto_precision_with_and_without_native_bf16(
    index: LoadedIndex, tiny_cross_encoder_path: Path, monkeypatch, fast_bf16: bool
) -> None:
    import workbench.retrieval.rerank as rerank_module

    monkeypatch.setattr(rerank_module, "cpu_has_fast_bf16", lambda: fast_bf16)
    auto = CrossEncoderReranker(tiny_cross_encoder_path, batch_size=4, max_length=64)
    assert auto.precision == ("bfloat16" if fast_bf16 else "float32")
    full = CrossEncoderReranker(tiny_cross_encoder_path, batch_size=4, max_length=64, precision="float32")
    passages = [text for _, text in PASSAGES]
    got, want = auto.score("aspirin heart attack", passages), full.score("aspirin heart attack", passages)
    assert got.dtype == np.float32 and got.shape == (len(PASSAGES),)
    # The scores are probabilities in (0, 1). bf16 keeps 8 significant bits (relative error up to 2**-8 per
    # rounding), so under bf16 they match float32 to 1e-2, whether the CPU runs bf16 natively or emulates it; in
    # float32 it is the same computation run twice. Ranks are not compared: this tiny random model's scores all
    # sit within ~1e-4 of each other, closer than bf16 resolves.
    tolerance = 1e-2 if fast_bf16 else 1e-6
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance)
    result = index.search("aspirin heart attack", mode="hybrid", k=3, rerank=auto, rerank_top_n=6)
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)


@pytest.mark.parametrize("fast_bf16", [True, False])
def test_index_build_auto_precision_with_and_without_native_bf16(
    tiny_encoder_path: Path, tmp_path: Path, monkeypatch, fast_bf16: bool
) -> None:
    import workbench.retrieval.encoders as encoders_module

    monkeypatch.setattr(encoders_module, "cpu_has_fast_bf16", lambda: fast_bf16)
    manifest = build_index(out_dir=tmp_path / "v", passages=PASSAGES, encoder_path=tiny_encoder_path)
    assert manifest["parameters"]["precision"] == ("bfloat16" if fast_bf16 else "float32")
    result = LoadedIndex(tmp_path / "v").search("aspirin", mode="hybrid", k=10, alpha=0.0)  # BM25 weight only
    assert result.passage_ids[:2] == [101, 109]  # decided by BM25, whatever the embeddings' precision


def test_rerank_order_follows_the_reranker(index: LoadedIndex) -> None:
    result = index.search("aspirin", mode="bm25", k=2, rerank=LengthReranker(), rerank_top_n=2)
    texts = dict(PASSAGES)
    lengths = [len(texts[pid]) for pid in result.passage_ids]
    assert lengths == sorted(lengths)


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_allowed_ids_filter(index: LoadedIndex, mode: str) -> None:
    allowed = {102, 105, 108}
    result = index.search("aspirin heart attack cholesterol", mode=mode, k=5, allowed_ids=allowed)
    assert set(result.passage_ids) <= allowed
    if mode != "bm25":
        assert set(result.passage_ids) == allowed
    assert index.search("aspirin", mode=mode, allowed_ids=set()).hits == []
    assert index.search("aspirin", mode=mode, allowed_ids={999}).hits == []


def test_query_validation(index: LoadedIndex) -> None:
    with pytest.raises(QueryTooLongError, match="limit is 10000"):
        index.search("x" * 100_000)
    assert index.search("aspirin " * (MAX_QUERY_CHARS // 8 - 1), mode="bm25", k=1).hits
    with pytest.raises(RetrievalError, match="empty"):
        index.search("   ")
    with pytest.raises(RetrievalError, match="mode"):
        index.search("aspirin", mode="sparse")
    with pytest.raises(RetrievalError, match="k must be"):
        index.search("aspirin", k=0)


def test_load_index_is_cached(built, index: LoadedIndex) -> None:
    assert load_index(built[0]) is index
    assert load_index(built[0], cache_key="index-version-7") is not index
    assert load_index(built[0], cache_key="index-version-7") is load_index(built[0], cache_key="index-version-7")


def test_texts_for(index: LoadedIndex) -> None:
    assert index.texts_for([110, 101]) == [PASSAGES[9][1], PASSAGES[0][1]]
    with pytest.raises(RetrievalError, match="not in this index"):
        index.texts_for([5])


def test_encoder_mismatch_is_detected(built, tmp_path: Path) -> None:
    other = build_tiny_encoder(tmp_path / "other", seed=1)  # same shape, different weights
    with pytest.raises(RetrievalError, match="fingerprint differs"):
        LoadedIndex(built[0], encoder_path=other)
    assert LoadedIndex(built[0], encoder_path=other, verify_encoder=False).passage_count == 10


def test_dimension_mismatch_is_detected(built, tmp_path: Path, monkeypatch) -> None:
    import workbench.retrieval.search as search_module

    monkeypatch.setattr(search_module, "embedding_dimension", lambda model: 384)
    with pytest.raises(RetrievalError, match="dimension mismatch"):
        LoadedIndex(built[0])


def test_missing_index_directory(tmp_path: Path) -> None:
    with pytest.raises(RetrievalError, match=r"no manifest\.json"):
        load_index(tmp_path / "nope")

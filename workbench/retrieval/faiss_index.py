"""FAISS dense indexes over L2-normalised vectors (inner product = cosine): Flat, HNSW and IVF-PQ.

A saved dense index is a directory holding ``faiss.index`` (row i = the i-th vector), ``ids.npy`` (row -> passage id)
and ``dense.json`` (type, parameters, dimension, count). Loading memory-maps the vectors where FAISS allows it, so
several worker processes serving the same index share one copy in the page cache.

Threads: for a single query extra OpenMP threads do not help and can hurt (bench/search.py, 2 shared cores: Flat over
1M vectors p50 148 ms with one thread, 201 ms with two; HNSW equal). Searches therefore run with ``search_threads``
(default 1), which also leaves the other cores to concurrent requests; builds use every core.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from workbench.retrieval.errors import OperationCancelled, RetrievalError

INDEX_TYPES = ("flat", "hnsw", "ivfpq")
INDEX_FILE = "faiss.index"
IDS_FILE = "ids.npy"
META_FILE = "dense.json"

# Size limits of auto_index_params (see its docstring for the reasoning).
FLAT_MAX_VECTORS = 50_000
HNSW_MAX_VECTORS = 3_000_000
# FAISS k-means warns below 39 training points per centroid: fewer give poor centroids.
MIN_POINTS_PER_CENTROID = 39
# Filtered searches over at most this many rows are done exactly on the stored vectors (Flat/HNSW): a few ms.
EXACT_FILTER_MAX_ROWS = 20_000
MAX_EF_SEARCH = 4096
MAX_REFINE = 64
# Vectors are added in slices of this many so long builds report progress and can be cancelled.
ADD_SLICE = 65_536

_TYPE_FIELDS = {
    "flat": (),
    "hnsw": ("hnsw_m", "ef_construction", "ef_search"),
    "ivfpq": ("nlist", "pq_m", "nbits", "nprobe", "refine"),
}


@dataclass(frozen=True)
class IndexParams:
    """Type and parameters of a dense index; only the fields of ``index_type`` matter.

    HNSW: ``hnsw_m`` links per node, ``ef_construction`` build beam, ``ef_search`` default query beam.
    IVF-PQ: ``nlist`` coarse clusters, ``pq_m`` sub-quantizers (bytes per vector when ``nbits`` = 8),
    ``nprobe`` default clusters visited per query, ``refine``: when > 0, the ``refine * k`` best PQ candidates are
    rescored exactly with the full vectors, which are kept in the index file and memory-mapped (disk, not RAM).
    HNSW defaults reach recall@10 0.955 at p95 3.1-3.6 ms on 1M x 384 (bench/search.py).
    """

    index_type: str
    hnsw_m: int = 32
    ef_construction: int = 128
    ef_search: int = 256
    nlist: int = 1024
    pq_m: int = 48
    nbits: int = 8
    nprobe: int = 32
    refine: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The type and the parameters that apply to it (what a manifest records)."""
        return {"index_type": self.index_type, **{name: getattr(self, name) for name in _TYPE_FIELDS[self.index_type]}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexParams:
        """Build from a manifest or form dict; unknown keys are an error so typos do not pass silently."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise RetrievalError(f"unknown index parameters {sorted(unknown)}; known: {sorted(known)}")
        if data.get("index_type") not in INDEX_TYPES:
            raise RetrievalError(f"index type must be one of {', '.join(INDEX_TYPES)} (got {data.get('index_type')!r})")
        try:
            values = {k: (v if k == "index_type" else int(v)) for k, v in data.items()}
        except (TypeError, ValueError) as exc:
            raise RetrievalError(f"index parameters must be integers: {exc}") from None
        return cls(**values)


_PARAM_LABELS = {
    "hnsw_m": "M",
    "ef_construction": "efConstruction",
    "ef_search": "efSearch",
    "nlist": "nlist",
    "pq_m": "PQ bytes",
    "nbits": "bits",
    "nprobe": "nprobe",
    "refine": "refine x",
}
_TYPE_LABELS = {"flat": "Flat (exact)", "hnsw": "HNSW", "ivfpq": "IVF-PQ"}


def describe_params(params: IndexParams | dict[str, Any]) -> str:
    """Index parameters as a person reads them: "Flat (exact)", "HNSW · M 32 · efConstruction 128 · efSearch 256"."""
    data = params.to_dict() if isinstance(params, IndexParams) else dict(params)
    kind = str(data.get("index_type", ""))
    parts = [_TYPE_LABELS.get(kind, kind or "?")]
    parts += [f"{_PARAM_LABELS.get(k, k)} {v}" for k, v in data.items() if k != "index_type"]
    return " · ".join(parts)


def _largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, max(1, limit) + 1) if n % d == 0)


def auto_index_params(n_vectors: int, dim: int) -> tuple[IndexParams, str]:
    """Pick an index type and parameters for a corpus size; returns the parameters and the reason, for the manifest.

    - Below 50k vectors: Flat. Exact, no training; a brute-force scan of 50k x 384 floats is a few ms per query.
    - Up to 3M: HNSW (M=32, efConstruction=128, efSearch=256). On 1M x 384 MiniLM-like vectors: recall@10 0.955 at
      p95 3.1-3.6 ms with one thread; it keeps full vectors plus ~256 bytes of links per vector (a few GB at
      3M x 384), and builds in ~6 min per million vectors on 2 cores.
    - Above: IVF-PQ. Keeps ``pq_m`` bytes per vector in memory (8 dimensions per byte), so tens of millions fit;
      nlist ~ 4*sqrt(n) as a power of two, nprobe 64. PQ alone loses much recall (0.44 recall@10 at 1M), so the best
      8*k candidates are rescored with the exact vectors, read from the memory-mapped index file (disk, not RAM):
      0.84 at 1M, p95 1.7 ms.
    """
    if n_vectors < 1:
        raise RetrievalError("cannot choose index parameters for an empty corpus")
    if n_vectors < FLAT_MAX_VECTORS:
        return IndexParams("flat"), f"{n_vectors} vectors < {FLAT_MAX_VECTORS}: exact Flat search is fast enough"
    if n_vectors <= HNSW_MAX_VECTORS:
        return IndexParams("hnsw"), (
            f"{n_vectors} vectors <= {HNSW_MAX_VECTORS}: HNSW gives few-ms queries at high recall and fits in memory"
        )
    nlist = 2 ** round(math.log2(4 * math.sqrt(n_vectors)))
    pq_m = _largest_divisor_at_most(dim, dim // 8)
    return IndexParams("ivfpq", nlist=nlist, pq_m=pq_m, nprobe=64, refine=8), (
        f"{n_vectors} vectors > {HNSW_MAX_VECTORS}: IVF-PQ stores {pq_m} bytes per vector instead of {4 * dim}"
    )


def validate_params(params: IndexParams, n_vectors: int, dim: int) -> tuple[IndexParams, list[str]]:
    """Check parameters against the data; return the parameters to use and warnings about any adjustment.

    Raises ``RetrievalError`` for what cannot work; adjusts (with a warning) what would only work badly, namely an
    IVF ``nlist`` with fewer than 39 training vectors per cluster.
    """
    if params.index_type not in INDEX_TYPES:
        raise RetrievalError(f"index type must be one of {', '.join(INDEX_TYPES)} (got {params.index_type!r})")
    if n_vectors < 1:
        raise RetrievalError("no vectors to index: the corpus has no passages")
    if dim < 1:
        raise RetrievalError(f"vector dimension must be positive (got {dim})")
    notes: list[str] = []
    if params.index_type == "hnsw":
        if not 2 <= params.hnsw_m <= 256:
            raise RetrievalError(f"HNSW M must be between 2 and 256 (got {params.hnsw_m})")
        if params.ef_construction < params.hnsw_m:
            raise RetrievalError(f"HNSW efConstruction ({params.ef_construction}) must be at least M ({params.hnsw_m})")
        if not 1 <= params.ef_search <= MAX_EF_SEARCH:
            raise RetrievalError(f"HNSW efSearch must be between 1 and {MAX_EF_SEARCH} (got {params.ef_search})")
    elif params.index_type == "ivfpq":
        if params.nlist < 1 or params.nprobe < 1:
            raise RetrievalError("IVF nlist and nprobe must be at least 1")
        if params.nprobe > params.nlist:
            raise RetrievalError(f"nprobe ({params.nprobe}) cannot exceed nlist ({params.nlist})")
        if params.pq_m < 1 or dim % params.pq_m:
            raise RetrievalError(f"PQ m ({params.pq_m}) must divide the vector dimension ({dim})")
        if not 1 <= params.nbits <= 16:
            raise RetrievalError(f"PQ nbits must be between 1 and 16 (got {params.nbits})")
        if not 0 <= params.refine <= MAX_REFINE:
            raise RetrievalError(f"refine must be between 0 (off) and {MAX_REFINE} (got {params.refine})")
        if n_vectors < params.nlist:
            raise RetrievalError(
                f"IVF needs at least nlist ({params.nlist}) vectors to train its clusters; the corpus has {n_vectors}"
            )
        if n_vectors < 2**params.nbits:
            raise RetrievalError(
                f"PQ with nbits={params.nbits} needs at least {2**params.nbits} vectors to train; got {n_vectors}"
            )
        if n_vectors < MIN_POINTS_PER_CENTROID * params.nlist:
            nlist = max(1, n_vectors // MIN_POINTS_PER_CENTROID)
            nprobe = min(params.nprobe, nlist)
            notes.append(
                f"nlist {params.nlist} needs {MIN_POINTS_PER_CENTROID * params.nlist} training vectors but only "
                f"{n_vectors} exist: using nlist {nlist}, nprobe {nprobe}"
            )
            params = replace(params, nlist=nlist, nprobe=nprobe)
    return params, notes


@contextmanager
def faiss_threads(n: int | None) -> Iterator[None]:
    """Run FAISS with ``n`` OpenMP threads (None: all cores) inside the block, restoring the previous setting."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n or os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _as_matrix(vectors: np.ndarray, dim: int | None = None) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise RetrievalError(f"vectors must be a 2-d array (got shape {x.shape})")
    if dim is not None and x.shape[1] != dim:
        raise RetrievalError(
            f"dimension mismatch: vectors have {x.shape[1]} dimensions but the index has {dim} "
            "(was the index built with a different encoder?)"
        )
    return np.ascontiguousarray(x)


def _new_index(params: IndexParams, dim: int) -> faiss.Index:
    if params.index_type == "flat":
        return faiss.IndexFlatIP(dim)
    if params.index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params.ef_construction
        index.hnsw.efSearch = params.ef_search
        return index
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFPQ(quantizer, dim, params.nlist, params.pq_m, params.nbits, faiss.METRIC_INNER_PRODUCT)
    index.nprobe = params.nprobe
    if not params.refine:
        return index
    refined = faiss.IndexRefineFlat(index)
    refined.k_factor = params.refine  # the faiss wrapper keeps a reference to the wrapped index
    return refined


def _ivf_of(index: faiss.Index) -> faiss.IndexIVF:
    return faiss.downcast_index(index.base_index) if isinstance(index, faiss.IndexRefine) else index


class DenseIndex:
    """A FAISS index plus the passage id of each row; made by ``build_dense_index`` or ``load_dense_index``."""

    def __init__(self, index: faiss.Index, ids: np.ndarray, params: IndexParams) -> None:
        if index.ntotal != len(ids):
            raise RetrievalError(f"index has {index.ntotal} vectors but {len(ids)} ids")
        self.index = index
        self.ids = ids
        self.params = params
        self.search_threads = 1
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def rows_for_ids(self, passage_ids: set[int] | np.ndarray | list[int]) -> np.ndarray:
        """Row numbers of the given passage ids (ids not in the index are ignored), ascending."""
        wanted = np.fromiter(passage_ids, dtype=np.int64) if isinstance(passage_ids, set) else np.asarray(passage_ids)
        rows, found = self.row_positions(wanted)
        return np.unique(rows[found])

    def row_positions(self, passage_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row of each given passage id, in the given order; whether the index holds it): rows where ``found`` is
        False are meaningless."""
        wanted = np.asarray(passage_ids, dtype=np.int64)
        if wanted.size == 0 or len(self) == 0:
            return np.zeros(wanted.size, dtype=np.int64), np.zeros(wanted.size, dtype=bool)
        if self._sorted is None:
            ids = np.asarray(self.ids)
            # Database ids usually arrive ascending: then no argsort (and no copy of a memory-mapped array) is needed.
            if np.all(ids[:-1] <= ids[1:]):
                self._sorted = (np.arange(len(ids)), ids)
            else:
                order = np.argsort(ids, kind="stable")
                self._sorted = (order, ids[order])
        order, sorted_ids = self._sorted
        pos = np.clip(np.searchsorted(sorted_ids, wanted), 0, len(sorted_ids) - 1)
        return order[pos], sorted_ids[pos] == wanted

    def stored_vectors(self) -> np.ndarray | None:
        """The vectors as stored, row by row (a read-only view), or None where the index keeps only compressed codes."""
        return self._flat_vectors()

    def _flat_vectors(self) -> np.ndarray | None:
        # Zero-copy view of the stored float vectors (Flat, or HNSW's flat storage); None for compressed indexes.
        store = self.index
        if isinstance(store, faiss.IndexHNSW):
            store = faiss.downcast_index(store.storage)
        elif isinstance(store, faiss.IndexRefine):
            store = faiss.downcast_index(store.refine_index)
        if not isinstance(store, faiss.IndexFlat):
            return None
        return faiss.rev_swig_ptr(store.get_xb(), store.ntotal * store.d).reshape(store.ntotal, store.d)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        ef_search: int | None = None,
        nprobe: int | None = None,
        allowed_rows: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` passage ids and inner-product scores for each query row, best first.

        ``allowed_rows`` restricts results to those rows (a metadata filter); missing results are id -1, score -inf.
        """
        x = _as_matrix(queries, self.dim)
        if k < 1:
            raise RetrievalError(f"k must be at least 1 (got {k})")
        k = min(k, len(self))
        if allowed_rows is not None:
            allowed_rows = np.asarray(allowed_rows, dtype=np.int64)
            if allowed_rows.size == 0:
                return np.full((len(x), k), -1, np.int64), np.full((len(x), k), -np.inf, np.float32)
            vectors = self._flat_vectors()
            if vectors is not None and allowed_rows.size <= EXACT_FILTER_MAX_ROWS:
                return self._exact_subset_search(x, k, vectors, allowed_rows)
        params = self._search_parameters(k, ef_search, nprobe, allowed_rows)
        with faiss_threads(self.search_threads):
            scores, rows = self.index.search(x, k, params=params)
        found = rows >= 0
        ids = np.where(found, np.asarray(self.ids)[np.where(found, rows, 0)], -1)
        return ids.astype(np.int64), np.where(found, scores, -np.inf).astype(np.float32)

    def _exact_subset_search(
        self, x: np.ndarray, k: int, vectors: np.ndarray, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = x @ vectors[rows].T
        k_eff = min(k, rows.size)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k_eff]
        out_ids = np.full((len(x), k), -1, np.int64)
        out_scores = np.full((len(x), k), -np.inf, np.float32)
        out_ids[:, :k_eff] = np.asarray(self.ids)[rows[top]]
        out_scores[:, :k_eff] = np.take_along_axis(scores, top, axis=1)
        return out_ids, out_scores

    def _search_parameters(
        self, k: int, ef_search: int | None, nprobe: int | None, allowed_rows: np.ndarray | None
    ) -> faiss.SearchParameters | None:
        selector = None
        fraction = 1.0
        if allowed_rows is not None:
            mask = np.zeros(len(self), dtype=bool)
            mask[allowed_rows] = True
            bitmap = np.packbits(mask, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(self), faiss.swig_ptr(bitmap))
            selector.bitmap_array = bitmap  # keep the buffer alive as long as the selector
            fraction = allowed_rows.size / len(self)
        if self.params.index_type == "hnsw":
            ef = ef_search or self.params.ef_search
            if not 1 <= ef <= MAX_EF_SEARCH:
                raise RetrievalError(f"efSearch must be between 1 and {MAX_EF_SEARCH} (got {ef})")
            # With a filter only a fraction of visited nodes can be returned: widen the beam accordingly.
            ef = min(MAX_EF_SEARCH, max(ef, k, math.ceil(k / fraction)))
            params = faiss.SearchParametersHNSW(efSearch=ef)
        elif self.params.index_type == "ivfpq":
            nlist = _ivf_of(self.index).nlist
            probe = nprobe or self.params.nprobe
            if not 1 <= probe <= nlist:
                raise RetrievalError(f"nprobe must be between 1 and nlist ({nlist}) (got {probe})")
            params = faiss.SearchParametersIVF(nprobe=min(nlist, math.ceil(probe / fraction)))
            if self.params.refine:
                ivf_params = params
                if selector is not None:
                    ivf_params.sel = selector
                    ivf_params.selector_ref = selector
                params = faiss.IndexRefineSearchParameters(k_factor=self.params.refine, base_index_params=ivf_params)
                params.base_ref = ivf_params
                return params
        elif selector is None:
            return None
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
            params.selector_ref = selector  # SWIG does not keep the selector alive through the params object
        return params

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write ``faiss.index``, ``ids.npy`` and ``dense.json`` into ``directory`` (created if needed)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(out / INDEX_FILE))
        np.save(out / IDS_FILE, np.asarray(self.ids, dtype=np.int64))
        meta = {"params": self.params.to_dict(), "dimension": self.dim, "count": len(self)}
        (out / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")


def build_dense_index(
    vectors: np.ndarray,
    ids: np.ndarray | list[int],
    params: IndexParams,
    *,
    threads: int | None = None,
    seed: int = 0,
    progress_callback: Callable[[int, int], None] | None = None,
    cancel_check: Callable[[], bool] | None = None,
) -> tuple[DenseIndex, list[str]]:
    """Build a dense index over L2-normalised ``vectors`` whose rows belong to passage ``ids``.

    Returns the index and warnings about adjusted parameters. ``threads`` (default: all cores) is used for training
    and adding only. Vectors are added in slices, with ``progress_callback(added, total)`` after each and
    ``cancel_check()`` before each (``OperationCancelled`` when it returns true): an HNSW build can take minutes.
    """
    x = _as_matrix(vectors)
    ids_arr = np.asarray(ids, dtype=np.int64)
    if len(ids_arr) != len(x):
        raise RetrievalError(f"{len(x)} vectors but {len(ids_arr)} ids")
    if len(np.unique(ids_arr)) != len(ids_arr):
        raise RetrievalError("passage ids must be unique")
    params, notes = validate_params(params, len(x), x.shape[1])
    for note in notes:
        warnings.warn(note, stacklevel=2)
    index = _new_index(params, x.shape[1])
    with faiss_threads(threads):
        if not index.is_trained:
            # FAISS subsamples internally too; a bounded random sample keeps training memory flat for huge corpora.
            n_train = min(len(x), max(64 * params.nlist, 64 * 2**params.nbits))
            sample = np.random.default_rng(seed).choice(len(x), n_train, replace=False)
            index.train(x[np.sort(sample)])
        for start in range(0, len(x), ADD_SLICE):
            if cancel_check is not None and cancel_check():
                raise OperationCancelled(f"index build cancelled after {start} of {len(x)} vectors")
            index.add(x[start : start + ADD_SLICE])
            if progress_callback is not None:
                progress_callback(min(start + ADD_SLICE, len(x)), len(x))
    return DenseIndex(index, ids_arr, params), notes


def _read_index(path: Path, params: IndexParams, mmap: bool) -> faiss.Index:
    if mmap:
        # IVF inverted lists and flat vector arrays (Flat, HNSW storage, IVF-PQ refine vectors) are mapped by
        # different FAISS flags, which cannot be combined; for refined IVF-PQ the big part is the refine vectors.
        plain_ivf = params.index_type == "ivfpq" and not params.refine
        flag = faiss.IO_FLAG_MMAP if plain_ivf else faiss.IO_FLAG_MMAP_IFC
        try:
            return faiss.read_index(str(path), flag)
        except RuntimeError:
            pass  # an index type FAISS cannot map: read it into memory
    return faiss.read_index(str(path))


def load_dense_index(directory: str | os.PathLike[str], *, mmap: bool = True) -> DenseIndex:
    """Load a dense index saved by ``DenseIndex.save``; memory-mapped where FAISS supports it (read-only)."""
    d = Path(directory)
    for name in (INDEX_FILE, IDS_FILE, META_FILE):
        if not (d / name).is_file():
            raise RetrievalError(f"{d} is not a dense index directory (missing {name})")
    meta = json.loads((d / META_FILE).read_text(encoding="utf-8"))
    params = IndexParams.from_dict(meta["params"])
    index = _read_index(d / INDEX_FILE, params, mmap)
    ids = np.load(d / IDS_FILE, mmap_mode="r" if mmap else None)
    return DenseIndex(index, ids, params)

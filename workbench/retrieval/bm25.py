"""BM25 keyword search with the ``bm25s`` library (sparse precomputed scores, memory-mappable).

Tokenization is bm25s's: lower-cased word tokens of two or more characters, English stopwords removed. Stemming
needs PyStemmer, which is not part of our pinned stack: with ``stemmer="auto"`` it is used when importable and skipped
otherwise, and the choice is saved with the index (an index built with a stemmer refuses to load without it, since
queries would be tokenized differently from the documents).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from workbench.retrieval.errors import RetrievalError

PARAMS_FILE = "bm25.json"
IDS_FILE = "ids.npy"
STEMMER_NAME = "pystemmer-english"


@dataclass(frozen=True)
class BM25Params:
    """Scoring parameters; the defaults are Elasticsearch's (k1 1.2, b 0.75), as in BEIR's published BM25 figures."""

    k1: float = 1.2
    b: float = 0.75
    method: str = "lucene"
    stopwords: str = "en"
    stemmer: str | None = "auto"  # "auto", "pystemmer-english" or None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _make_stemmer(name: str | None) -> Any:
    if name is None:
        return None
    try:
        import Stemmer  # PyStemmer
    except ImportError:
        if name == "auto":
            return None
        raise RetrievalError(
            f"this BM25 index was built with the {name} stemmer, but PyStemmer is not installed"
        ) from None
    return Stemmer.Stemmer("english").stemWord


def _resolve_stemmer(name: str | None) -> str | None:
    if name not in (None, "auto", STEMMER_NAME):
        raise RetrievalError(f"unknown stemmer {name!r}: use auto, {STEMMER_NAME} or none")
    return STEMMER_NAME if _make_stemmer(name) is not None else None


class BM25Index:
    """A bm25s index plus the passage id of each document row. Create with ``build_bm25`` or ``load_bm25``."""

    def __init__(self, retriever: Any, tokenizer: Any, ids: np.ndarray, params: BM25Params) -> None:
        self.retriever = retriever
        self.tokenizer = tokenizer
        self.ids = ids
        self.params = params

    def __len__(self) -> int:
        return len(self.ids)

    def _query_token_ids(self, query: str) -> list[int]:
        # update_vocab=False: query words unseen in the corpus are dropped, never added to the vocabulary.
        tokens = self.tokenizer.tokenize([query], update_vocab=False, return_as="ids", show_progress=False)[0]
        known = self.retriever.unique_token_ids_set
        empty_id = self.retriever.vocab_dict.get("")
        return [t for t in tokens if t in known and t != empty_id]

    def scores(self, query: str, allowed_rows: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every document row for ``query`` (0 where no query term occurs or the row is filtered out)."""
        token_ids = self._query_token_ids(query)
        if not token_ids:
            return np.zeros(len(self), dtype=np.float32)
        mask = None
        if allowed_rows is not None:
            mask = np.zeros(len(self), dtype=np.float32)
            mask[np.asarray(allowed_rows, dtype=np.int64)] = 1.0
        return np.asarray(self.retriever.get_scores(token_ids, weight_mask=mask), dtype=np.float32)

    def search(self, query: str, k: int, *, allowed_rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` passage ids and BM25 scores, best first, ties broken by passage id.

        Documents sharing no term with the query (score 0) are not returned, so fewer than ``k`` may come back.
        """
        if k < 1:
            raise RetrievalError(f"k must be at least 1 (got {k})")
        scores = self.scores(query, allowed_rows)
        rows = np.flatnonzero(scores > 0)
        if rows.size > k:
            # Keep every row tied with the k-th score so the id tie-break below sees all of them.
            kth = np.partition(scores[rows], rows.size - k)[rows.size - k]
            rows = rows[scores[rows] >= kth]
        ids = np.asarray(self.ids)[rows]
        order = np.lexsort((ids, -scores[rows]))[:k]
        return ids[order].astype(np.int64), scores[rows][order]

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the bm25s index, the tokenizer vocabulary, ``ids.npy`` and ``bm25.json`` into ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.retriever.save(str(out), show_progress=False)
        self.tokenizer.save_vocab(str(out))
        self.tokenizer.save_stopwords(str(out))
        np.save(out / IDS_FILE, np.asarray(self.ids, dtype=np.int64))
        (out / PARAMS_FILE).write_text(json.dumps(self.params.to_dict(), indent=2), encoding="utf-8")


def _new_tokenizer(params: BM25Params) -> Any:
    from bm25s.tokenization import Tokenizer

    return Tokenizer(stopwords=params.stopwords, stemmer=_make_stemmer(params.stemmer))


def build_bm25(ids: Sequence[int] | np.ndarray, texts: Sequence[str], params: BM25Params | None = None) -> BM25Index:
    """Index ``texts`` (row i belongs to passage ``ids[i]``) for BM25 search."""
    import bm25s

    params = params or BM25Params()
    if params.k1 < 0 or not 0 <= params.b <= 1:
        raise RetrievalError(f"BM25 needs k1 >= 0 and 0 <= b <= 1 (got k1={params.k1}, b={params.b})")
    ids_arr = np.asarray(ids, dtype=np.int64)
    if len(ids_arr) != len(texts):
        raise RetrievalError(f"{len(texts)} texts but {len(ids_arr)} ids")
    if len(ids_arr) == 0:
        raise RetrievalError("no passages to index for BM25")
    params = replace(params, stemmer=_resolve_stemmer(params.stemmer))
    tokenizer = _new_tokenizer(params)
    corpus_tokens = tokenizer.tokenize(list(texts), return_as="tuple", show_progress=False)
    retriever = bm25s.BM25(k1=params.k1, b=params.b, method=params.method)
    retriever.index(corpus_tokens, show_progress=False)
    return BM25Index(retriever, tokenizer, ids_arr, params)


def load_bm25(directory: str | os.PathLike[str], *, mmap: bool = True) -> BM25Index:
    """Load an index saved by ``BM25Index.save`` (score arrays memory-mapped by default)."""
    import bm25s

    d = Path(directory)
    if not (d / PARAMS_FILE).is_file() or not (d / IDS_FILE).is_file():
        raise RetrievalError(f"{d} is not a BM25 index directory (missing {PARAMS_FILE} or {IDS_FILE})")
    params = BM25Params(**json.loads((d / PARAMS_FILE).read_text(encoding="utf-8")))
    tokenizer = _new_tokenizer(params)
    tokenizer.load_vocab(str(d))
    tokenizer.load_stopwords(str(d))
    retriever = bm25s.BM25.load(str(d), mmap=mmap, show_progress=False)
    return BM25Index(retriever, tokenizer, np.load(d / IDS_FILE, mmap_mode="r" if mmap else None), params)

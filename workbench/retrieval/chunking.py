"""Token-aware chunking of documents into passages.

Passages are cut on the embedding model's own tokenizer so a chunk never exceeds what the encoder reads, and each
passage is an exact slice of the document text (``text[char_start:char_end]``), so evidence spans and highlights
map back to the source.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol


class ChunkingError(ValueError):
    """Chunking parameters that cannot work (a user-facing message)."""


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    text: str
    char_start: int
    char_end: int
    token_start: int
    token_end: int  # exclusive

    @property
    def token_count(self) -> int:
        return self.token_end - self.token_start

    @property
    def content_hash(self) -> str:
        return content_hash(self.text)


class _Encoding(Protocol):
    offsets: list[tuple[int, int]]


class TokenizerLike(Protocol):
    def encode_batch(self, texts: list[str], add_special_tokens: bool = ...) -> list[_Encoding]: ...


def content_hash(text: str) -> str:
    """Stable hash of passage text (sha256 hex), used to detect changed or duplicate passages."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=8)
def load_tokenizer(model_dir: str) -> TokenizerLike:
    """Load the fast tokenizer (``tokenizer.json``) of a model directory, cached per process."""
    from tokenizers import Tokenizer

    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():
        raise ChunkingError(f"{model_dir} has no tokenizer.json: cannot chunk with its tokenizer")
    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    return tok


def validate_params(chunk_size: int, overlap: int) -> None:
    if chunk_size < 8:
        raise ChunkingError(f"chunk size must be at least 8 tokens (got {chunk_size})")
    if overlap < 0 or overlap >= chunk_size:
        raise ChunkingError(
            f"overlap must be between 0 and chunk size - 1 (got {overlap} with chunk size {chunk_size})"
        )


def chunk_offsets(offsets: list[tuple[int, int]], chunk_size: int, overlap: int) -> list[tuple[int, int]]:
    """Token windows `[start, end)` of at most `chunk_size` tokens; consecutive windows share exactly `overlap`."""
    n = len(offsets)
    if n == 0:
        return []
    stride = chunk_size - overlap
    windows = []
    start = 0
    while True:
        end = min(start + chunk_size, n)
        windows.append((start, end))
        if end == n:
            return windows
        start += stride


def chunk_texts(
    texts: list[str], tokenizer: TokenizerLike, *, chunk_size: int = 256, overlap: int = 32
) -> list[list[Chunk]]:
    """Chunk many documents at once (the tokenizer batches in Rust, which is what makes large imports fast).

    ``chunk_size`` counts content tokens, without the [CLS]/[SEP] the encoder adds. A document with no tokens (only
    whitespace) yields no chunks.
    """
    validate_params(chunk_size, overlap)
    encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
    result: list[list[Chunk]] = []
    for text, enc in zip(texts, encodings, strict=True):
        # Some tokenizers emit zero-width offsets (e.g. for normalised-away characters); they carry no text.
        offsets = [o for o in enc.offsets if o[1] > o[0]]
        chunks = []
        for ordinal, (t0, t1) in enumerate(chunk_offsets(offsets, chunk_size, overlap)):
            c0, c1 = offsets[t0][0], offsets[t1 - 1][1]
            chunks.append(Chunk(ordinal, text[c0:c1], c0, c1, t0, t1))
        result.append(chunks)
    return result

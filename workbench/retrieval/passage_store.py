"""Passage texts stored beside an index, readable by row without loading them all (reranking, notebooks).

``texts.bin`` holds the UTF-8 texts back to back and ``text_offsets.npy`` the n + 1 byte offsets; both are
memory-mapped on load, so a million passages cost nothing until read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from workbench.retrieval.errors import RetrievalError

TEXTS_FILE = "texts.bin"
OFFSETS_FILE = "text_offsets.npy"


def write_texts(directory: str | os.PathLike[str], texts: Iterable[str]) -> None:
    """Write ``texts`` (row order) into ``directory``."""
    out = Path(directory)
    offsets = [0]
    with open(out / TEXTS_FILE, "wb") as f:
        for text in texts:
            data = text.encode("utf-8")
            f.write(data)
            offsets.append(offsets[-1] + len(data))
    np.save(out / OFFSETS_FILE, np.asarray(offsets, dtype=np.int64))


def has_texts(directory: str | os.PathLike[str]) -> bool:
    """True when ``directory`` holds a passage store."""
    return (Path(directory) / TEXTS_FILE).is_file() and (Path(directory) / OFFSETS_FILE).is_file()


class PassageStore:
    """Read-only access to stored passage texts by row number."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        d = Path(directory)
        if not has_texts(d):
            raise RetrievalError(f"{d} has no stored passage texts")
        self.offsets = np.load(d / OFFSETS_FILE, mmap_mode="r")
        size = int(self.offsets[-1])
        # np.memmap cannot map an empty file; an all-empty corpus needs no mapping anyway.
        self.data = np.memmap(d / TEXTS_FILE, dtype=np.uint8, mode="r") if size else np.empty(0, np.uint8)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def get(self, rows: Sequence[int] | np.ndarray) -> list[str]:
        """Texts of the given rows, in that order."""
        out = []
        for row in rows:
            start, end = int(self.offsets[row]), int(self.offsets[row + 1])
            out.append(bytes(self.data[start:end]).decode("utf-8"))
        return out

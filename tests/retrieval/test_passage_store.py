from __future__ import annotations

from pathlib import Path

import pytest

from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.passage_store import PassageStore, write_texts


def test_round_trip_by_row(tmp_path: Path) -> None:
    texts = ["first", "", "ünïcødé – 数据", "last"]
    write_texts(tmp_path, texts)
    store = PassageStore(tmp_path)
    assert len(store) == 4
    assert store.get([2, 0, 1, 3]) == [texts[2], texts[0], texts[1], texts[3]]


def test_all_empty_texts(tmp_path: Path) -> None:
    write_texts(tmp_path, ["", ""])
    assert PassageStore(tmp_path).get([1]) == [""]


def test_missing_store(tmp_path: Path) -> None:
    with pytest.raises(RetrievalError, match="no stored passage texts"):
        PassageStore(tmp_path)

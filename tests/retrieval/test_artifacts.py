from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from workbench.retrieval.artifacts import (
    atomic_directory,
    find_stale_temp_dirs,
    make_manifest,
    read_manifest,
    remove_stale_temp_dirs,
    write_manifest,
)
from workbench.retrieval.errors import RetrievalError


def test_atomic_directory_appears_only_when_complete(tmp_path: Path) -> None:
    dest = tmp_path / "artifact"
    with atomic_directory(dest) as tmp:
        assert tmp.parent == tmp_path and ".tmp-" in tmp.name
        (tmp / "weights.bin").write_bytes(b"123")
        assert not dest.exists()
    assert (dest / "weights.bin").read_bytes() == b"123"
    assert os.listdir(tmp_path) == ["artifact"]


def test_exception_leaves_nothing_behind(tmp_path: Path) -> None:
    dest = tmp_path / "artifact"
    with pytest.raises(RuntimeError), atomic_directory(dest) as tmp:
        (tmp / "half.bin").write_bytes(b"1")
        raise RuntimeError("disk full")
    assert os.listdir(tmp_path) == []


def test_crash_leaves_only_a_temp_dir_that_is_cleaned_up(tmp_path: Path) -> None:
    dest = tmp_path / "artifact"
    # A killed process never runs the context manager's exit: simulate by abandoning the generator mid-write.
    ctx = atomic_directory(dest)
    tmp = ctx.__enter__()
    (tmp / "half.bin").write_bytes(b"1")
    assert not dest.exists()
    assert find_stale_temp_dirs(tmp_path) == []  # too recent: could be a live build
    old = time.time() - 7 * 3600
    os.utime(tmp, (old, old))
    assert find_stale_temp_dirs(tmp_path) == [tmp]
    assert remove_stale_temp_dirs(tmp_path) == [tmp]
    assert os.listdir(tmp_path) == []


def test_existing_destination_is_refused(tmp_path: Path) -> None:
    (tmp_path / "artifact").mkdir()
    with pytest.raises(RetrievalError, match="already exists"), atomic_directory(tmp_path / "artifact"):
        pass


def test_manifest_round_trip(tmp_path: Path) -> None:
    manifest = make_manifest("index", base="/models/minilm", parameters={"nlist": 4}, metrics={"s": 1.5}, note="x")
    write_manifest(tmp_path, manifest)
    loaded = read_manifest(tmp_path)
    assert loaded == manifest
    assert loaded["created"].endswith("+00:00")


def test_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(RetrievalError, match=r"no manifest\.json"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(RetrievalError, match="cannot read"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"kind": "index"}')
    with pytest.raises(RetrievalError, match="not a valid manifest"):
        read_manifest(tmp_path)
    with pytest.raises(RetrievalError, match="missing created"):
        write_manifest(tmp_path, {"kind": "index"})

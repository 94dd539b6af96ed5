"""Atomic artifact directories (model and index versions) and their ``manifest.json``.

An artifact is written into ``<dest>.tmp-<uuid>`` next to its final place and renamed to ``<dest>`` only when
complete. ``os.rename`` of a directory is atomic on one filesystem, so a reader sees either no artifact or a whole one;
a crash leaves only a ``.tmp-`` directory, which ``remove_stale_temp_dirs`` cleans up later.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.retrieval.errors import RetrievalError

MANIFEST_NAME = "manifest.json"
TEMP_MARKER = ".tmp-"
REQUIRED_MANIFEST_KEYS = ("kind", "created")
# A temporary directory older than this is presumed abandoned by a crashed writer. Builds encode in memory first and
# only hold a temporary directory while writing, but a multi-million-vector HNSW build can still take hours.
STALE_AFTER_S = 6 * 3600.0


def temp_dir_for(dest: Path) -> Path:
    """A fresh temporary sibling of ``dest`` (same filesystem, so the final rename is atomic)."""
    return dest.with_name(f"{dest.name}{TEMP_MARKER}{uuid.uuid4().hex}")


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; not available on every platform, and best effort is enough here.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_directory(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory to fill; on success rename it to ``dest``, on any exception delete it.

    Raises ``RetrievalError`` if ``dest`` already exists (artifacts are immutable: write a new version instead).
    """
    final = Path(dest)
    if final.exists():
        raise RetrievalError(f"artifact directory {final} already exists")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir_for(final)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            raise RetrievalError(f"artifact directory {final} appeared while this one was being written")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(final.parent)


def now_iso() -> str:
    """Current UTC time as an ISO 8601 string with seconds, as stored in manifests."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def make_manifest(
    kind: str,
    *,
    base: str | None = None,
    parameters: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A manifest dict: ``kind``, ``base``, ``parameters``, ``metrics``, ``created`` plus any free-form fields."""
    return {
        "kind": kind,
        "base": base,
        "parameters": dict(parameters or {}),
        "metrics": dict(metrics or {}),
        "created": now_iso(),
        **extra,
    }


def write_manifest(directory: str | os.PathLike[str], manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` into ``directory`` (JSON, sorted keys for stable diffs) and return its path."""
    missing = [key for key in REQUIRED_MANIFEST_KEYS if key not in manifest]
    if missing:
        raise RetrievalError(f"manifest is missing {', '.join(missing)}")
    path = Path(directory) / MANIFEST_NAME
    with open(path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    return path


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``manifest.json`` from an artifact directory; ``RetrievalError`` if it is missing or not valid JSON."""
    path = Path(directory) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RetrievalError(f"{directory} is not an artifact directory (no {MANIFEST_NAME})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise RetrievalError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or any(key not in data for key in REQUIRED_MANIFEST_KEYS):
        raise RetrievalError(f"{path} is not a valid manifest")
    return data


def is_temp_dir(path: Path) -> bool:
    """True for a directory left by an unfinished ``atomic_directory``."""
    return TEMP_MARKER in path.name and path.is_dir()


def find_stale_temp_dirs(parent: str | os.PathLike[str], *, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Temporary artifact directories in ``parent`` not modified for ``older_than_s`` seconds (crashed writes)."""
    root = Path(parent)
    if not root.is_dir():
        return []
    cutoff = time.time() - older_than_s
    return sorted(p for p in root.iterdir() if is_temp_dir(p) and p.stat().st_mtime < cutoff)


def remove_stale_temp_dirs(parent: str | os.PathLike[str], *, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete what ``find_stale_temp_dirs`` finds and return the removed paths.

    Keep ``older_than_s`` above the longest build, since a live build's directory looks the same as a dead one.
    """
    removed = []
    for path in find_stale_temp_dirs(parent, older_than_s=older_than_s):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed

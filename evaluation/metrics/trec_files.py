"""TREC run and qrels files.

Run lines are ``qid Q0 docid rank score tag``, written in our pinned order
(score descending, ties by doc id ascending) with ranks from 1. Qrels lines
are ``qid iteration docid grade``. Like trec_eval, the reader ignores the rank
column: the order is the scores'.

**Scores are written so that trec_eval ranks exactly as we do.** trec_eval
ignores the rank column, reads each score into a C ``float`` and sorts by it,
breaking ties by doc id *descending*; so a run with ties (hybrid RRF has many)
or with scores that differ only beyond single precision would be scored in a
different order from the page's. The writer therefore makes the written
scores strictly decreasing in single precision down each query's ranking:

- a doc whose score, rounded to float32, is below the previous written score
  (as float32) is written with its real score, unchanged, as ``repr`` of the
  double: reading the file gives back the exact float;
- a doc that would tie (equal score, or equal after float32 rounding) is
  written as the next float32 value below the previous written score
  (``nextafter``), printed as the exact double of that float32, so it parses
  to the same float32 in trec_eval and to a strictly smaller double for us.

Most queries have no collision and are written untouched. In a query that has
one, only colliding docs change: the k-th doc of a run of colliding docs moves
by at most k + 1 float32 ulps (about 6e-8 * (k + 1) relative for normal-sized
scores; ties at 0.0 become tiny negative subnormals), invisible at any
displayed precision, and the order (ours and trec_eval's) is the pinned one. Written scores are strictly decreasing in
float64 too, so our own reader ranks the file identically. Should nudging run
into ``-inf`` (a pathological query whose lowest scores are float32 ``-inf``
already), that query is written with scores ``n, n-1, ..., 1`` instead
(exact in float32, see :func:`~.ranking.tie_free_scores`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np

from .errors import MetricsError
from .ranking import Qrels, Run, ranked_doc_ids

PathOrFile = str | os.PathLike[str] | IO[str]


@contextmanager
def _open(target: PathOrFile, mode: str) -> Iterator[IO[str]]:
    if isinstance(target, (str, os.PathLike)):
        with Path(target).open(mode, encoding="utf-8", newline="\n") as fh:
            yield fh
    else:
        yield target


def _check_token(value: str, what: str) -> str:
    if not isinstance(value, str) or not value or value != value.strip() or len(value.split()) != 1:
        raise MetricsError(f"{what} must be a non-empty string without whitespace, got {value!r}")
    return value


def trec_eval_scores(scores: Mapping[str, float], depth: int | None = None) -> list[tuple[str, float]]:
    """(doc id, score to write) in our pinned order, cut at ``depth``.

    The written scores are strictly decreasing in single precision (what
    trec_eval compares), so trec_eval's order is ours; see the module
    docstring for how they are derived from the real scores.
    """
    docs = ranked_doc_ids(scores)[:depth]
    values = [float(scores[doc]) for doc in docs]
    if not values:
        return []
    real = np.asarray(values, dtype=np.float64)
    if np.isnan(real).any():
        raise MetricsError("scores must not be NaN")
    with np.errstate(over="ignore"):  # huge doubles become float32 inf, as in trec_eval
        seen = real.astype(np.float32)
    collide = np.flatnonzero(seen[1:] >= seen[:-1])
    if not len(collide):
        return list(zip(docs, values, strict=True))  # the common case: written unchanged
    lowest = np.float32(-np.inf)
    previous = seen[collide[0]]
    for i in range(int(collide[0]) + 1, len(values)):
        if seen[i] < previous:
            previous = seen[i]
            continue
        previous = np.nextafter(previous, lowest)
        if previous == lowest:
            # No float32 left below: fall back to rank-derived scores n..1.
            n = len(values)
            return [(doc, float(n - position)) for position, doc in enumerate(docs)]
        values[i] = float(previous)  # the exact double of a float32
    return list(zip(docs, values, strict=True))


def trec_run_lines(
    run: Run,
    *,
    tag: str = "workbench",
    depth: int | None = None,
    encode_id: Callable[[str], str] | None = None,
) -> Iterator[str]:
    """Lines of a TREC run file (queries sorted by id), without newlines.

    Docs are ranked on the ids as given; ``encode_id`` (e.g. percent-encoding
    of whitespace) is applied only when writing, so the file's order is the
    pinned order of the original ids even where encoding would sort them
    differently.
    """
    _check_token(tag, "run tag")
    if depth is not None and depth <= 0:
        raise MetricsError(f"depth must be a positive integer, got {depth}")
    encode = encode_id or (lambda value: value)
    for qid in sorted(run):
        q = _check_token(encode(qid), "query id")
        for rank, (doc, score) in enumerate(trec_eval_scores(run[qid], depth), start=1):
            yield f"{q} Q0 {_check_token(encode(doc), 'doc id')} {rank} {score!r} {tag}"


def write_trec_run(
    run: Run,
    target: PathOrFile,
    *,
    tag: str = "workbench",
    depth: int | None = None,
    encode_id: Callable[[str], str] | None = None,
) -> None:
    """Write a run (query id -> {doc id: score}) as a TREC run file that trec_eval ranks as we do."""
    with _open(target, "w") as fh:
        for line in trec_run_lines(run, tag=tag, depth=depth, encode_id=encode_id):
            fh.write(line + "\n")


def _rows(lines: Iterable[str], width: int, kind: str) -> Iterator[tuple[int, list[str]]]:
    for number, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != width:
            raise MetricsError(f"{kind} line {number}: expected {width} fields, got {len(parts)}: {line.strip()!r}")
        yield number, parts


def read_trec_run(source: PathOrFile) -> dict[str, dict[str, float]]:
    """Read a TREC run file; a doc listed twice for one query is an error."""
    run: dict[str, dict[str, float]] = {}
    with _open(source, "r") as fh:
        for number, (qid, _q0, doc, _rank, score, _tag) in _rows(fh, 6, "run"):
            try:
                value = float(score)
            except ValueError:
                raise MetricsError(f"run line {number}: bad score {score!r}") from None
            scores = run.setdefault(qid, {})
            if doc in scores:
                raise MetricsError(f"run line {number}: doc {doc!r} repeated for query {qid!r}")
            scores[doc] = value
    return run


def write_trec_qrels(qrels: Qrels, target: PathOrFile) -> None:
    """Write qrels (query id -> {doc id: grade}) as a TREC qrels file."""
    with _open(target, "w") as fh:
        for qid in sorted(qrels):
            _check_token(qid, "query id")
            grades: Mapping[str, int] = qrels[qid]
            for doc in sorted(grades):
                _check_token(doc, "doc id")
                fh.write(f"{qid} 0 {doc} {int(grades[doc])}\n")


def read_trec_qrels(source: PathOrFile) -> dict[str, dict[str, int]]:
    """Read a TREC qrels file; a doc judged twice for one query is an error."""
    qrels: dict[str, dict[str, int]] = {}
    with _open(source, "r") as fh:
        for number, (qid, _iteration, doc, grade) in _rows(fh, 4, "qrels"):
            try:
                value = int(grade)
            except ValueError:
                raise MetricsError(f"qrels line {number}: bad grade {grade!r}") from None
            grades = qrels.setdefault(qid, {})
            if doc in grades:
                raise MetricsError(f"qrels line {number}: doc {doc!r} judged twice for {qid!r}")
            grades[doc] = value
    return qrels

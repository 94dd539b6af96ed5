"""TREC run and qrels files.

Run lines are ``qid Q0 docid rank score tag``, written in our pinned order
(score descending, ties by doc id ascending) with ranks from 1. Scores are
written with ``repr`` so that reading a file back gives the same floats. Like
trec_eval, the reader ignores the rank column: the order is the scores'.
Qrels lines are ``qid iteration docid grade``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

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


def trec_run_lines(run: Run, *, tag: str = "workbench", depth: int | None = None) -> Iterator[str]:
    """Lines of a TREC run file (queries sorted by id), without newlines."""
    _check_token(tag, "run tag")
    if depth is not None and depth <= 0:
        raise MetricsError(f"depth must be a positive integer, got {depth}")
    for qid in sorted(run):
        _check_token(qid, "query id")
        scores = run[qid]
        for rank, doc in enumerate(ranked_doc_ids(scores)[:depth], start=1):
            _check_token(doc, "doc id")
            yield f"{qid} Q0 {doc} {rank} {float(scores[doc])!r} {tag}"


def write_trec_run(run: Run, target: PathOrFile, *, tag: str = "workbench", depth: int | None = None) -> None:
    """Write a run (query id -> {doc id: score}) as a TREC run file."""
    with _open(target, "w") as fh:
        for line in trec_run_lines(run, tag=tag, depth=depth):
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

"""The TREC files of an evaluation (run per configuration, qrels), with ids made safe for the format.

TREC lines are whitespace-separated, but document ids from uploaded files may contain spaces, so ``%`` and whitespace
are percent-encoded in the files (``a b`` -> ``a%20b``) and decoded when read back. Ordinary ids are unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, unquote

from evaluation.metrics import Qrels, Run, read_trec_qrels, write_trec_qrels, write_trec_run

_UNSAFE = re.compile(r"[%\s]")


def encode_id(value: str) -> str:
    return _UNSAFE.sub(lambda m: quote(m.group(), safe=""), value)


def decode_id(value: str) -> str:
    return unquote(value) if "%" in value else value


def write_run(run: Run, path: Path, *, tag: str, depth: int) -> None:
    """A run file trec_eval scores exactly as the page does (see ``evaluation.metrics.trec_files``).

    Ids are encoded only as lines are written: ranking on the encoded ids would break ties in a different order
    from the page's wherever encoding changes how ids sort (``a b`` < ``a!`` but ``a%20b`` > ``a!``).
    """
    write_trec_run(run, path, tag=tag, depth=depth, encode_id=encode_id)


def write_qrels(qrels: Qrels, path: Path) -> None:
    write_trec_qrels({encode_id(q): {encode_id(d): g for d, g in grades.items()} for q, grades in qrels.items()}, path)


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    return {decode_id(q): {decode_id(d): g for d, g in grades.items()} for q, grades in read_trec_qrels(path).items()}


def read_query_run(path: Path, qid: str) -> dict[str, float]:
    """One query's scored documents from a run file, without parsing the other queries' lines."""
    prefix = encode_id(qid) + " "
    scores: dict[str, float] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(prefix):
                _q, _q0, doc, _rank, score, _tag = line.split()
                scores[decode_id(doc)] = float(score)
    return scores


def read_runs_for(paths: Mapping[str, Path], qids: set[str]) -> dict[str, dict[str, dict[str, float]]]:
    """label -> qid -> scores for the given queries (one pass per file)."""
    wanted = {encode_id(q): q for q in qids}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for label, path in paths.items():
        runs: dict[str, dict[str, float]] = {}
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                q, _q0, doc, _rank, score, _tag = line.split()
                if q in wanted:
                    runs.setdefault(wanted[q], {})[decode_id(doc)] = float(score)
        out[label] = runs
    return out

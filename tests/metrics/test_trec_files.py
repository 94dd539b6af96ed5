from __future__ import annotations

import io

import pytest

from evaluation.metrics import (
    MetricsError,
    evaluate_run,
    read_trec_qrels,
    read_trec_run,
    trec_run_lines,
    write_trec_qrels,
    write_trec_run,
)


def test_run_lines_follow_our_order():
    run = {"q2": {"b": 1.0, "a": 1.0, "c": 0.1 + 0.2}, "q1": {"x": -2.5}}
    assert list(trec_run_lines(run, tag="bm25")) == [
        "q1 Q0 x 1 -2.5 bm25",
        "q2 Q0 a 1 1.0 bm25",
        "q2 Q0 b 2 1.0 bm25",
        "q2 Q0 c 3 0.30000000000000004 bm25",
    ]
    assert len(list(trec_run_lines(run, depth=1))) == 2


def test_run_and_qrels_round_trip(tmp_path):
    run = {"q1": {"a": 0.5, "b": 0.5, "c": 1e-300}, "q2": {"d": 3.0}}
    qrels = {"q1": {"a": 2, "c": 0}, "q2": {"d": 1, "e": 3}}
    write_trec_run(run, tmp_path / "run.txt")
    write_trec_qrels(qrels, tmp_path / "qrels.txt")
    assert read_trec_run(tmp_path / "run.txt") == run
    assert read_trec_qrels(tmp_path / "qrels.txt") == qrels
    before = evaluate_run(run, qrels).means()
    after = evaluate_run(read_trec_run(tmp_path / "run.txt"), read_trec_qrels(str(tmp_path / "qrels.txt")))
    assert after.means() == before


def test_file_objects_are_accepted():
    buffer = io.StringIO()
    write_trec_qrels({"q": {"d": 1}}, buffer)
    assert buffer.getvalue() == "q 0 d 1\n"
    assert read_trec_run(io.StringIO("q Q0 d 7 0.25 t\n\n")) == {"q": {"d": 0.25}}


@pytest.mark.parametrize(
    ("reader", "text", "message"),
    [
        (read_trec_run, "q Q0 d 1 0.5\n", "expected 6 fields"),
        (read_trec_run, "q Q0 d 1 high t\n", "bad score"),
        (read_trec_run, "q Q0 d 1 1 t\nq Q0 d 2 0 t\n", "repeated"),
        (read_trec_qrels, "q 0 d 1.5\n", "bad grade"),
        (read_trec_qrels, "q 0 d 1\nq 0 d 2\n", "judged twice"),
    ],
)
def test_malformed_files(reader, text, message):
    with pytest.raises(MetricsError, match=message):
        reader(io.StringIO(text))


def test_ids_with_whitespace_cannot_be_written():
    with pytest.raises(MetricsError, match="doc id"):
        list(trec_run_lines({"q": {"two words": 1.0}}))

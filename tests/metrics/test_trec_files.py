from __future__ import annotations

import io

import numpy as np
import pytest
import pytrec_eval
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.metrics import (
    MetricSemantics,
    MetricsError,
    evaluate_run,
    ranked_doc_ids,
    read_trec_qrels,
    read_trec_run,
    trec_eval_scores,
    trec_run_lines,
    write_trec_qrels,
    write_trec_run,
)


def test_run_lines_follow_our_order():
    run = {"q2": {"b": 1.0, "a": 1.0, "c": 0.1 + 0.2}, "q1": {"x": -2.5}}
    assert list(trec_run_lines(run, tag="bm25")) == [
        "q1 Q0 x 1 -2.5 bm25",
        "q2 Q0 a 1 1.0 bm25",
        # b ties with a: written one float32 ulp lower, so trec_eval (which would
        # put b first: ties by doc id descending) keeps our order.
        "q2 Q0 b 2 0.9999999403953552 bm25",
        "q2 Q0 c 3 0.30000000000000004 bm25",
    ]
    assert len(list(trec_run_lines(run, depth=1))) == 2


def test_written_scores_strictly_decrease_in_single_precision():
    one = 1.0
    scores = {
        "a": one, "b": one, "c": one + 1e-12,  # c is above a and b in double, equal in float32
        "d": 1 / 61, "e": 1 / 61, "f": 1 / 62,  # RRF-like ties
        "g": 0.0, "h": 0.0, "i": -1e-300,  # ties at zero, and a score that is zero in float32
        "j": 1e39, "k": 2e39,  # both float32 inf
    }  # fmt: skip
    written = trec_eval_scores(scores)
    assert [doc for doc, _ in written] == ranked_doc_ids(scores)
    values = np.array([v for _, v in written])
    assert (np.diff(values) < 0).all()
    with np.errstate(over="ignore"):  # 2e39 is inf in float32, as trec_eval reads it
        assert (np.diff(values.astype(np.float32)) < 0).all()
    # Docs that collide with nobody keep their exact score; the others move by a few float32 ulps.
    exact = dict(written)
    assert exact["k"] == 2e39 and exact["c"] == one + 1e-12 and exact["d"] == 1 / 61 and exact["f"] == 1 / 62
    for doc in ("a", "b", "e"):
        assert exact[doc] != scores[doc]
        np.testing.assert_allclose(exact[doc], scores[doc], rtol=4 * 2.0**-23, atol=0)
    assert exact["g"] == 0.0 and -1e-40 < exact["i"] < exact["h"] < 0.0
    assert trec_eval_scores(scores, depth=3) == written[:3]


def test_nudging_below_minus_infinity_falls_back_to_rank_scores():
    scores = {"a": 1.0, "b": -1e39, "c": -2e39}  # b and c are both -inf in float32
    assert trec_eval_scores(scores) == [("a", 3.0), ("b", 2.0), ("c", 1.0)]
    with pytest.raises(MetricsError, match="NaN"):
        trec_eval_scores({"a": float("nan"), "b": 1.0})


def test_run_and_qrels_round_trip(tmp_path):
    run = {"q1": {"a": 0.5, "b": 0.25, "c": 1e-300}, "q2": {"d": 3.0}}
    qrels = {"q1": {"a": 2, "c": 0}, "q2": {"d": 1, "e": 3}}
    write_trec_run(run, tmp_path / "run.txt")
    write_trec_qrels(qrels, tmp_path / "qrels.txt")
    assert read_trec_run(tmp_path / "run.txt") == run  # no ties: the exact scores come back
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


# Scores chosen to tie: exactly (RRF-like 1/(60+r) shared by two lists, zeros),
# or only after float32 rounding (x and x*(1+1e-12)), plus arbitrary floats.
_TIED = [1 / 61, 1 / 62, 1 / 63, 0.5, 0.5 * (1 + 1e-12), 0.5 * (1 - 1e-12), 0.0, -1e-300, 1e-300, 2.0]
_tie_scores = st.one_of(st.sampled_from(_TIED), st.floats(-3, 3, allow_nan=False))
# Ids whose ascending and descending orders differ, and some that sort as prefixes.
_DOCS = ["d1", "d10", "d2", "D2", "d2a", "x", "y", "z9", "a", "b", "c", "e"]
_QIDS = ["q1", "q2", "q3", "q4"]


def _trec_eval_on_file(text: str, qrels: dict, semantics: MetricSemantics) -> dict[str, dict[str, float]]:
    """pytrec_eval on a run file's lines read as trec_eval reads them: rank column ignored.

    MRR@k is ``recip_rank`` on the file cut to its first k lines per query (``head``), since the lines are in
    rank order.
    """
    run: dict[str, dict[str, float]] = {}
    cut: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        qid, _q0, doc, _rank, score, _tag = line.split()
        run.setdefault(qid, {})[doc] = float(score)
        if semantics.mrr_cutoff is None or len(cut.setdefault(qid, {})) < semantics.mrr_cutoff:
            cut.setdefault(qid, {})[doc] = float(score)
    judged = {q: g for q, g in qrels.items() if g}
    level = semantics.relevance_threshold
    measures = {"map", "recip_rank", *(f"{m}.{k}" for m, ks in (("recall", semantics.recall_ks),
                ("P", semantics.precision_ks), ("ndcg_cut", semantics.ndcg_ks)) for k in ks)}  # fmt: skip
    full = pytrec_eval.RelevanceEvaluator(judged, measures, relevance_level=level).evaluate(run)
    rr = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"}, relevance_level=level).evaluate(cut)
    out: dict[str, dict[str, float]] = {}
    for q in sorted(judged):
        if q not in full:
            continue
        row = {f"recall@{k}": full[q][f"recall_{k}"] for k in semantics.recall_ks}
        row |= {f"P@{k}": full[q][f"P_{k}"] for k in semantics.precision_ks}
        row[semantics.mrr_name] = rr[q]["recip_rank"]
        row |= {f"nDCG@{k}": full[q][f"ndcg_cut_{k}"] for k in semantics.ndcg_ks}
        row["MAP"] = full[q]["map"]
        out[q] = row
    return out


@settings(max_examples=300, deadline=None)
@given(
    run=st.dictionaries(
        st.sampled_from(_QIDS), st.dictionaries(st.sampled_from(_DOCS), _tie_scores, min_size=1), min_size=1
    ),
    qrels=st.dictionaries(st.sampled_from(_QIDS), st.dictionaries(st.sampled_from(_DOCS), st.integers(0, 3))),
    mrr_cutoff=st.sampled_from([None, 1, 3]),
)
def test_exported_run_scores_under_trec_eval_exactly_as_we_do(run, qrels, mrr_cutoff):
    semantics = MetricSemantics(mrr_cutoff=mrr_cutoff, recall_ks=(1, 3, 10), precision_ks=(1, 2, 5), ndcg_ks=(3, 10))
    ours = evaluate_run(run, qrels, semantics)
    buffer = io.StringIO()
    write_trec_run(run, buffer)
    theirs = _trec_eval_on_file(buffer.getvalue(), qrels, semantics)
    for i, q in enumerate(ours.qids):
        if q in run:
            # Same ranking, same pytrec_eval arithmetic: equal to the last bit.
            assert theirs[q] == {name: float(v[i]) for name, v in ours.per_query.items()}, q
    assert set(theirs) == {q for q in ours.qids if q in run}


def test_a_tied_run_differs_under_trec_eval_unless_exported_by_us():
    """The case the writer exists for: written as-is, trec_eval would rank this tie the other way."""
    run = {"q": {"a": 1 / 61, "b": 1 / 61, "c": 0.5 * (1 + 1e-12), "d": 0.5}}
    qrels = {"q": {"a": 1, "c": 1}}
    semantics = MetricSemantics(mrr_cutoff=None, recall_ks=(1,), precision_ks=(1,), ndcg_ks=(3,))
    naive = "".join(f"q Q0 {d} 1 {s!r} t\n" for d, s in run["q"].items())
    buffer = io.StringIO()
    write_trec_run(run, buffer)
    ours = evaluate_run(run, qrels, semantics).for_query("q")
    assert ours["P@1"] == 1.0  # our order: c (the larger double), d, a, b (exact tie, ids ascending)
    naive_trec = _trec_eval_on_file(naive, qrels, semantics)["q"]
    assert naive_trec["P@1"] == 0.0  # trec_eval: d, c (equal in float32, ids descending), b, a
    assert naive_trec["nDCG@3"] < ours["nDCG@3"]
    assert _trec_eval_on_file(buffer.getvalue(), qrels, semantics)["q"] == ours

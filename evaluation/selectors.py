"""Evaluation reads: lists, the evaluation page's tables, comparisons (also across evaluations), drill-down.

Comparisons never mix results that mean different things: semantics (cutoffs, relevance threshold, aggregation,
depth), the evaluated query set and the judgments must all be equal, otherwise a ``WorkbenchError`` says which.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from django.db.models import QuerySet

from evaluation.metrics import ALL_SLICE, MetricsError, RunMetrics, compare_metrics, ranked_doc_ids
from evaluation.models import EvalConfig, EvalRun
from evaluation.services import metric_semantics
from evaluation.trec import decode_id, read_qrels, read_query_run
from workbench.errors import WorkbenchError
from workbench.models import Document, Project, Query

VERDICT_CSS = {"better": "verdict-better", "worse": "verdict-worse", "not significant": "verdict-ns"}
HEADLINE_METRIC = "nDCG@10"
QUERY_ROWS_PER_PAGE = 25


def eval_runs_for_project(project: Project) -> QuerySet[EvalRun]:
    # The report and slices can be large; the list needs neither.
    return (
        EvalRun.objects.filter(project=project)
        .defer("report", "slices")
        .select_related("job", "created_by", "corpus", "baseline")
        .prefetch_related("configs")
    )


def eval_run_get(project: Project, pk: int) -> EvalRun | None:
    return (
        EvalRun.objects.filter(project=project, pk=pk)
        .select_related("job", "created_by", "corpus", "query_tag", "baseline", "hard_baseline")
        .first()
    )


def configs_of(run: EvalRun) -> list[EvalConfig]:
    return list(
        run.configs.select_related(
            "configuration__index__corpus", "configuration__index__encoder", "configuration__reranker"
        )
    )


def comparable_configs(project: Project) -> QuerySet[EvalConfig]:
    """Configurations of finished evaluations (they have per-query results), newest evaluation first."""
    return (
        EvalConfig.objects.filter(eval_run__project=project, eval_run__finished_at__isnull=False)
        .select_related("eval_run")
        .defer("results", "eval_run__report", "eval_run__slices")
        .order_by("-eval_run__created_at", "-eval_run_id", "position")
    )


def _fmt_p(value: float | None) -> str:
    return "—" if value is None else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def _num(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _cell(label: str, mean: float | None, baseline: str, comp: Mapping[str, Any] | None) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "label": label, "mean": mean, "mean_text": _num(mean), "is_baseline": label == baseline, "css": "",
    }  # fmt: skip
    if comp is not None:
        cell.update(
            diff=comp["diff"],
            diff_text=_num(comp["diff"], signed=True),
            ci_text=f"[{_num(comp['ci_low'], signed=True)}, {_num(comp['ci_high'], signed=True)}]",
            ci_low=comp["ci_low"],
            ci_high=comp["ci_high"],
            p=_fmt_p(comp["p_value"]),
            p_holm=_fmt_p(comp["p_holm"]),
            verdict=comp["verdict"],
            css=VERDICT_CSS.get(comp["verdict"], ""),
            wins=comp["wins"],
            ties=comp["ties"],
            losses=comp["losses"],
            n=comp["n"],
        )
    return cell


def _cells_index(comparisons: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[tuple[str, str], dict]]:
    return {label: {(c["metric"], c["slice"]): c for c in comp["cells"]} for label, comp in comparisons.items()}


def metric_rows(
    *,
    metric_names: Sequence[str],
    columns: Sequence[str],
    baseline: str,
    means: Mapping[str, Mapping[str, Mapping[str, float | None]]],
    comparisons: Mapping[str, Mapping[str, Any]],
    slice_name: str,
) -> list[dict[str, Any]]:
    """Rows = metrics of one slice; cells = configurations, candidates with diff, CI, p, Holm p, verdict, W/T/L."""
    index = _cells_index(comparisons)
    return [
        {
            "metric": metric,
            "cells": [
                _cell(
                    label,
                    means[label].get(slice_name, {}).get(metric),
                    baseline,
                    index.get(label, {}).get((metric, slice_name)),
                )
                for label in columns
            ],
        }
        for metric in metric_names
    ]


def slice_rows(
    *,
    slice_sizes: Mapping[str, int],
    columns: Sequence[str],
    baseline: str,
    means: Mapping[str, Mapping[str, Mapping[str, float | None]]],
    comparisons: Mapping[str, Mapping[str, Any]],
    metric: str,
) -> list[dict[str, Any]]:
    """Rows = slices (with sizes) for one metric; cells as in :func:`metric_rows`."""
    index = _cells_index(comparisons)
    return [
        {
            "slice": name,
            "n": n,
            "cells": [
                _cell(label, means[label].get(name, {}).get(metric), baseline, index.get(label, {}).get((metric, name)))
                for label in columns
            ],
        }
        for name, n in slice_sizes.items()
    ]


def _report_means(report: Mapping[str, Any]) -> dict[str, dict[str, dict[str, float | None]]]:
    return {
        label: {s: v["means"] for s, v in data["slices"].items()} for label, data in report.get("configs", {}).items()
    }


def run_metrics(cfg: EvalConfig) -> RunMetrics:
    try:
        return RunMetrics.from_dict(cfg.results["metrics"])
    except (KeyError, MetricsError) as exc:
        raise WorkbenchError(f"{cfg.label} has no per-query results ({exc}).") from None


def eval_run_tables(run: EvalRun, configs: Sequence[EvalConfig], *, slice_name: str, metric: str) -> dict[str, Any]:
    """Everything the evaluation page's tables show, for one selected slice and one selected slice metric."""
    report = run.report
    columns = [c.label for c in configs]
    means = _report_means(report)
    comparisons = report.get("comparisons", {})
    metric_names = report.get("metric_names", [])
    slice_sizes = report.get("slice_sizes", {})
    if slice_name not in slice_sizes:
        slice_name = ALL_SLICE
    if metric not in metric_names:
        metric = HEADLINE_METRIC if HEADLINE_METRIC in metric_names else metric_names[0]
    any_comp = next(iter(comparisons.values()), None)
    return {
        "columns": columns,
        "baseline_label": report.get("baseline"),
        "metric_names": metric_names,
        "slice_sizes": slice_sizes,
        "slice": slice_name,
        "slice_n": slice_sizes.get(slice_name, 0),
        "metric": metric,
        "metric_rows": metric_rows(
            metric_names=metric_names,
            columns=columns,
            baseline=report["baseline"],
            means=means,
            comparisons=comparisons,
            slice_name=slice_name,
        ),
        "slice_rows": slice_rows(
            slice_sizes=slice_sizes,
            columns=columns,
            baseline=report["baseline"],
            means=means,
            comparisons=comparisons,
            metric=metric,
        ),
        "test_info": (
            {
                "test": any_comp["test"],
                "resamples": any_comp["resamples"],
                "seed": any_comp["seed"],
                "alpha": any_comp["alpha"],
                "ci_level": any_comp["ci_level"],
                "family": any_comp["holm_family_size"],
            }
            if any_comp
            else None
        ),
        "counts": [
            {
                "label": c.label,
                "n_evaluated": report["configs"][c.label]["metrics"]["n_evaluated"],
                "n_excluded": report["configs"][c.label]["metrics"]["n_excluded"],
                "n_missing": len(report["configs"][c.label]["metrics"]["missing_qids"]),
                "n_failed": len(c.results.get("failed_queries", [])),
            }
            for c in configs
        ],
        "latency": [{"label": c.label, "stages": c.results.get("latency", {})} for c in configs],
    }


def _queries_by_external_id(project: Project, qids: Sequence[str]) -> dict[str, tuple[int, str]]:
    known: dict[str, tuple[int, str]] = {}
    for start in range(0, len(qids), 500):  # bounded IN lists: SQLite limits query parameters
        rows = Query.objects.filter(project=project, external_id__in=qids[start : start + 500])
        known.update({qid: (pk, text) for qid, pk, text in rows.values_list("external_id", "pk", "text")})
    return known


QUERY_ORDERS = {
    "delta": "largest loss first",
    "-delta": "largest gain first",
    "qid": "query id",
}
QUERY_CHANGES = {"": "all queries", "worse": "worse only", "better": "better only", "changed": "changed only"}


def column_heads(configs: Sequence[EvalConfig]) -> list[dict[str, Any]]:
    """Short column headings: a configuration's position and what tells it apart from the others (labels often
    share a long prefix, such as the corpus and the encoder), with the full label for a tooltip."""
    labels = [c.label for c in configs]
    prefix = ""
    if len(labels) > 1:  # the longest shared leading text (labels are text, not paths)
        shortest = min(labels, key=len)
        n = next((i for i, ch in enumerate(shortest) if any(label[i] != ch for label in labels)), len(shortest))
        prefix = shortest[:n]
    # Cut the shared prefix back to a whole part ("corpus v1 (encoder) · "), never inside a word.
    sep = prefix.rfind(" · ")
    prefix = prefix[: sep + 3] if sep >= 0 else prefix[: prefix.rfind(" ") + 1]
    heads = []
    for c in configs:
        short = c.label[len(prefix) :].strip() or c.label
        heads.append({"label": c.label, "position": c.position, "short": short[:40] + ("…" if len(short) > 40 else "")})
    return heads


def query_rows(
    project: Project,
    run: EvalRun,
    configs: Sequence[EvalConfig],
    *,
    candidate: str | None = None,
    text: str = "",
    change: str = "",
    order: str = "delta",
) -> dict[str, Any]:
    """Per-query headline metric of every configuration and the change of one candidate against the baseline.

    ``candidate``: the configuration label whose Δ (candidate − baseline) is shown; the first non-baseline one by
    default. ``text`` filters by query id or text, ``change`` by the direction of Δ, ``order`` sorts (QUERY_ORDERS).
    """
    metrics = {c.label: run_metrics(c) for c in configs}
    baseline = run.report["baseline"]
    base = metrics[baseline]
    metric = HEADLINE_METRIC if HEADLINE_METRIC in base.per_query else base.metric_names[0]
    others = [c.label for c in configs if c.label != baseline]
    if candidate not in others:
        candidate = others[0] if others else None
    values = {label: m.per_query[metric] for label, m in metrics.items()}
    known = _queries_by_external_id(project, base.qids)
    rows = []
    for i, qid in enumerate(base.qids):
        diff = float(values[candidate][i] - values[baseline][i]) if candidate else None
        rows.append(
            {
                "qid": qid,
                "pk": known.get(qid, (None, ""))[0],
                "text": known.get(qid, (None, ""))[1],
                "values": [float(values[c.label][i]) for c in configs],
                "diff": diff,
            }
        )
    n_all = len(rows)
    needle = text.strip().lower()
    if needle:
        rows = [r for r in rows if needle in r["qid"].lower() or needle in r["text"].lower()]
    if candidate and change in QUERY_CHANGES:
        keep = {
            "worse": lambda d: d < 0,
            "better": lambda d: d > 0,
            "changed": lambda d: d != 0,
        }.get(change)
        if keep is not None:
            rows = [r for r in rows if keep(r["diff"])]
    if order not in QUERY_ORDERS:
        order = "delta"
    if order == "qid":
        rows.sort(key=lambda r: r["qid"])
    else:
        sign = 1 if order == "delta" else -1
        rows.sort(key=lambda r: (sign * (r["diff"] if r["diff"] is not None else r["values"][0]), r["qid"]))
    by_label = {c.label: c for c in configs}
    return {
        "rows": rows,
        "n_all": n_all,
        "metric": metric,
        "candidate": by_label.get(candidate) if candidate else None,
        "baseline": by_label.get(baseline),
        "candidates": [by_label[label] for label in others],
        "order": order,
        "change": change if change in QUERY_CHANGES else "",
        "text": text.strip(),
    }


def _semantics_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return [f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def display_name(cfg: EvalConfig, baseline_run_id: int) -> str:
    """A configuration's label, with its evaluation when it comes from another one (labels repeat across runs)."""
    return cfg.label if cfg.eval_run_id == baseline_run_id else f"{cfg.label} [evaluation #{cfg.eval_run_id}]"


def comparison_build(*, baseline: EvalConfig, candidates: Sequence[EvalConfig]) -> dict[str, Any]:
    """Compare candidates with a baseline configuration, from the same or from other evaluations.

    Raises ``WorkbenchError`` unless semantics, evaluated queries and judgments are all equal.
    """
    candidates = [c for c in candidates if c.pk != baseline.pk]
    if not candidates:
        raise WorkbenchError("Pick at least one configuration other than the baseline to compare with it.")
    base_run = baseline.eval_run
    for cfg in [baseline, *candidates]:
        if not cfg.eval_run.is_complete:
            raise WorkbenchError(f"{cfg.label} (evaluation #{cfg.eval_run_id}) has no results yet.")
    base_metrics = run_metrics(baseline)
    comparisons: dict[str, dict[str, Any]] = {}
    means: dict[str, dict[str, dict[str, float | None]]] = {}
    base_name = display_name(baseline, base_run.pk)
    slices = {name: members for name, members in (base_run.slices or {}).items()}
    for cfg in candidates:
        run = cfg.eval_run
        diffs = _semantics_differences(base_run.semantics, run.semantics)
        if diffs:
            raise WorkbenchError(
                f"results with different semantics cannot be compared: {'; '.join(diffs)} "
                f"({base_name} vs {display_name(cfg, base_run.pk)})."
            )
        cand_metrics = run_metrics(cfg)
        if cand_metrics.qids != base_metrics.qids:
            common = len(set(cand_metrics.qids) & set(base_metrics.qids))
            raise WorkbenchError(
                f"results on different query sets cannot be compared: {base_run.query_set} has "
                f"{base_metrics.n_evaluated} judged queries, {run.query_set} has {cand_metrics.n_evaluated}, "
                f"{common} in common."
            )
        if run.qrels_sha256 != base_run.qrels_sha256:
            raise WorkbenchError(
                "results computed from different judgments cannot be compared: the judgments of these queries "
                f"changed between evaluation #{base_run.pk} and #{run.pk}. Re-run both on the current judgments."
            )
        try:
            comparison = compare_metrics(
                base_metrics,
                cand_metrics,
                slices,
                baseline_name=base_name,
                candidate_name=display_name(cfg, base_run.pk),
                test=base_run.test,
                resamples=base_run.resamples,
                seed=base_run.seed,
                classic_tests=False,  # informational only, and slow (see services.eval_run_execute)
            )
        except MetricsError as exc:
            raise WorkbenchError(str(exc)) from None
        name = comparison.candidate
        comparisons[name] = comparison.to_dict()
        for cell in comparison.cells:
            means.setdefault(base_name, {}).setdefault(cell.slice, {})[cell.metric] = cell.baseline_mean
            means.setdefault(name, {}).setdefault(cell.slice, {})[cell.metric] = cell.candidate_mean
    first = next(iter(comparisons.values()))
    slice_sizes: dict[str, int] = {}
    for cell in first["cells"]:
        slice_sizes.setdefault(cell["slice"], cell["n"])
    return {
        "baseline": base_name,
        "columns": [base_name, *comparisons],
        "means": means,
        "comparisons": comparisons,
        "metric_names": list(base_metrics.metric_names),
        "slice_sizes": slice_sizes,
        "semantics": base_run.semantics,
        "test_info": {
            "test": first["test"],
            "resamples": first["resamples"],
            "seed": first["seed"],
            "alpha": first["alpha"],
            "ci_level": first["ci_level"],
            "family": first["holm_family_size"],
        },
    }


def _artifact(run: EvalRun, name: str) -> Path:
    path = Path(run.artifact_dir) / name
    if not run.artifact_dir or not path.is_file():
        raise WorkbenchError(f"The files of evaluation #{run.pk} are missing ({name}); re-run the evaluation.")
    return path


def run_file_path(cfg: EvalConfig) -> Path:
    run = cfg.eval_run
    path = Path(cfg.run_file)
    # Only files inside the evaluation's own directory are ever served.
    if not cfg.run_file or path.parent != Path(run.artifact_dir) or not path.is_file():
        raise WorkbenchError(f"The run file of {cfg.label} is missing; re-run the evaluation.")
    return path


def query_drilldown(run: EvalRun, configs: Sequence[EvalConfig], query: Query, *, k: int) -> dict[str, Any]:
    """Each configuration's top k documents with grades, the relevant documents it missed, and unjudged pairs."""
    qid = query.external_id
    grades = read_qrels(_artifact(run, "qrels.txt")).get(qid, {})
    threshold = metric_semantics(run.semantics).relevance_threshold
    relevant = {d for d, g in grades.items() if g >= threshold}
    columns = []
    shown: set[str] = set()
    unjudged: dict[str, dict[str, Any]] = {}
    for cfg in configs:
        scores = read_query_run(run_file_path(cfg), qid)
        ranking = ranked_doc_ids(scores)
        position = {d: r for r, d in enumerate(ranking, start=1)}
        top = ranking[:k]
        shown.update(top)
        rows = []
        for rank, doc in enumerate(top, start=1):
            grade = grades.get(doc)
            rows.append({"rank": rank, "doc": doc, "score": scores[doc], "grade": grade, "unjudged": grade is None,
                         "relevant": doc in relevant})  # fmt: skip
            if grade is None:
                entry = unjudged.setdefault(doc, {"doc": doc, "best_rank": rank, "configs": []})
                entry["best_rank"] = min(entry["best_rank"], rank)
                entry["configs"].append(cfg.label)
        missed = sorted(
            ({"doc": d, "grade": grades[d], "rank": position.get(d)} for d in relevant - set(top)),
            key=lambda m: (m["rank"] is None, m["rank"] or 0, m["doc"]),
        )
        metrics = run_metrics(cfg)
        try:
            per_query = metrics.for_query(qid)
        except MetricsError:
            per_query = {}  # excluded: the query has no judgments
        columns.append({"config": cfg, "rows": rows, "missed": missed, "metrics": per_query})
    docs = {
        d.external_id: d
        for d in Document.objects.filter(corpus_id=run.corpus_id, external_id__in=shown | relevant).only(
            "id", "external_id", "title"
        )
    }
    for col in columns:
        for row in [*col["rows"], *col["missed"]]:
            row["document"] = docs.get(row["doc"])
    for entry in unjudged.values():
        entry["document"] = docs.get(entry["doc"])
    return {
        "columns": columns,
        "metric_table": [
            {"metric": m, "values": [_num(col["metrics"].get(m)) for col in columns]}
            for m in run.report.get("metric_names", [])
        ],
        "grades": grades,
        "n_relevant": len(relevant),
        "unjudged": sorted(unjudged.values(), key=lambda e: (e["best_rank"], e["doc"])),
    }


def unjudged_pairs(
    run: EvalRun, configs: Sequence[EvalConfig], *, k: int, qids: Iterable[str] | None = None
) -> list[dict]:
    """(query, document) pairs in some configuration's top k that have no judgment, best rank first per query."""
    grades = read_qrels(_artifact(run, "qrels.txt"))
    wanted = set(qids) if qids is not None else None
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for cfg in configs:
        with run_file_path(cfg).open(encoding="utf-8") as fh:
            for line in fh:
                q, _q0, doc, rank, _score, _tag = line.split()
                q, doc, r = decode_id(q), decode_id(doc), int(rank)
                if r > k or (wanted is not None and q not in wanted) or doc in grades.get(q, {}):
                    continue
                entry = pairs.setdefault((q, doc), {"qid": q, "doc": doc, "best_rank": r, "configs": []})
                entry["best_rank"] = min(entry["best_rank"], r)
                entry["configs"].append(cfg.label)
    return sorted(pairs.values(), key=lambda e: (e["qid"], e["best_rank"], e["doc"]))

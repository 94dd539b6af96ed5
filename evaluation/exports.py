"""Exports of a finished evaluation: JSON (everything), CSV (long format), a text table, unjudged pairs.

Used by the download views and by ``manage.py evaluate``, so both give the same files.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from evaluation.metrics import ALL_SLICE
from evaluation.models import EvalConfig, EvalRun
from workbench.models import Document, Query

CSV_COLUMNS = [
    "config", "is_baseline", "slice", "n", "metric", "mean", "baseline_mean", "diff", "ci_low", "ci_high",
    "p_value", "p_holm", "verdict", "wins", "ties", "losses", "test", "resamples", "seed",
]  # fmt: skip
SHORT_VERDICT = {"better": "better", "worse": "worse", "not significant": "n.s."}


def _config_dict(cfg: EvalConfig) -> dict[str, Any]:
    return {
        "position": cfg.position,
        "label": cfg.label,
        "search_configuration_id": cfg.configuration_id,
        "search_configuration": cfg.configuration.name,
        "index_version_id": cfg.configuration.index_id,
        "index": str(cfg.configuration.index),
        "encoder": cfg.configuration.index.encoder.name,
        "mode": cfg.configuration.mode,
        "alpha": cfg.configuration.alpha,
        "fusion_depth": cfg.configuration.fusion_depth,
        "reranker": cfg.configuration.reranker.name if cfg.configuration.reranker else None,
        "rerank_top_n": cfg.configuration.rerank_top_n if cfg.configuration.reranker else None,
        "depth": cfg.depth,
        "run_tag": cfg.run_tag,
        "latency_ms": cfg.results.get("latency", {}),
        "failed_queries": cfg.results.get("failed_queries", []),
        "metrics": cfg.results.get("metrics", {}),
    }


def report_json(run: EvalRun, configs: Sequence[EvalConfig]) -> dict[str, Any]:
    """The whole evaluation: parameters, semantics, slices, per-query metrics, latency and the report."""
    return {
        "evaluation": {
            "id": run.pk,
            "name": run.name,
            "project": run.project.slug,
            "query_set": run.query_set,
            "corpus": run.corpus.name,
            "corpus_version": run.corpus_version,
            "depth": run.depth,
            "test": run.test,
            "resamples": run.resamples,
            "seed": run.seed,
            "baseline": run.baseline.label if run.baseline else None,
            "hard_subset_baseline": run.hard_baseline.label if run.hard_baseline else None,
            "notes": run.notes,
            "qrels_sha256": run.qrels_sha256,
            "created_by": run.created_by.username if run.created_by else None,
            "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        },
        "semantics": run.semantics,
        "slices": run.slices,
        "configs": [_config_dict(c) for c in configs],
        "report": run.report,
    }


def report_rows(run: EvalRun, configs: Sequence[EvalConfig]) -> list[dict[str, Any]]:
    """One row per (configuration, slice, metric), with the comparison against the baseline where there is one."""
    report = run.report
    baseline = report["baseline"]
    cells = {
        label: {(c["metric"], c["slice"]): c for c in comp["cells"]} for label, comp in report["comparisons"].items()
    }
    meta = {label: comp for label, comp in report["comparisons"].items()}
    rows = []
    for name, n in report["slice_sizes"].items():
        for metric in report["metric_names"]:
            for cfg in configs:
                mean = report["configs"][cfg.label]["slices"][name]["means"].get(metric)
                row: dict[str, Any] = {
                    "config": cfg.label, "is_baseline": cfg.label == baseline, "slice": name, "n": n,
                    "metric": metric, "mean": mean,
                }  # fmt: skip
                cell = cells.get(cfg.label, {}).get((metric, name))
                if cell:
                    row.update({k: cell[k] for k in ("baseline_mean", "diff", "ci_low", "ci_high", "p_value",
                                                      "p_holm", "verdict", "wins", "ties", "losses")})  # fmt: skip
                    row.update(test=meta[cfg.label]["test"], resamples=meta[cfg.label]["resamples"],
                               seed=meta[cfg.label]["seed"])  # fmt: skip
                rows.append(row)
    return rows


def _csv(rows: Iterable[dict[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return out.getvalue()


def report_csv(run: EvalRun, configs: Sequence[EvalConfig]) -> str:
    return _csv(report_rows(run, configs), CSV_COLUMNS)


def _spreadsheet_safe(text: str) -> str:
    # Untrusted text starting like a formula would be executed by spreadsheet programs that open the CSV.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def unjudged_csv(run: EvalRun, pairs: Sequence[dict[str, Any]]) -> str:
    qids = sorted({p["qid"] for p in pairs})
    docs = sorted({p["doc"] for p in pairs})
    texts: dict[str, str] = {}
    titles: dict[str, str] = {}
    for start in range(0, len(qids), 500):
        rows = Query.objects.filter(project=run.project, external_id__in=qids[start : start + 500])
        texts.update(rows.values_list("external_id", "text"))
    for start in range(0, len(docs), 500):
        rows = Document.objects.filter(corpus_id=run.corpus_id, external_id__in=docs[start : start + 500])
        titles.update(rows.values_list("external_id", "title"))
    rows = [
        {
            "query_id": _spreadsheet_safe(p["qid"]),
            "query_text": _spreadsheet_safe(texts.get(p["qid"], "")),
            "doc_id": _spreadsheet_safe(p["doc"]),
            "doc_title": _spreadsheet_safe(titles.get(p["doc"], "")),
            "best_rank": p["best_rank"],
            "configurations": _spreadsheet_safe("; ".join(p["configs"])),
        }
        for p in pairs
    ]
    return _csv(rows, ["query_id", "query_text", "doc_id", "doc_title", "best_rank", "configurations"])


def results_table(run: EvalRun, configs: Sequence[EvalConfig], *, slice_name: str = ALL_SLICE) -> str:
    """Plain-text table: metric x configuration, candidates with diff and verdict against the baseline."""
    report = run.report
    baseline = report["baseline"]
    cells = {
        label: {(c["metric"], c["slice"]): c for c in comp["cells"]} for label, comp in report["comparisons"].items()
    }
    header = ["metric"] + [f"[{c.position}]" + (" baseline" if c.label == baseline else "") for c in configs]
    lines = [header]
    for metric in report["metric_names"]:
        row = [metric]
        for cfg in configs:
            mean = report["configs"][cfg.label]["slices"][slice_name]["means"].get(metric)
            text = "—" if mean is None else f"{mean:.4f}"
            cell = cells.get(cfg.label, {}).get((metric, slice_name))
            if cell and cell["diff"] is not None:
                text += f" ({cell['diff']:+.4f} {SHORT_VERDICT.get(cell['verdict'], cell['verdict'])})"
            row.append(text)
        lines.append(row)
    widths = [max(len(r[i]) for r in lines) for i in range(len(header))]
    out = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
        for r in lines
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    legend = [f"[{c.position}] {c.label}" for c in configs]
    n = report["slice_sizes"].get(slice_name, 0)
    comp = next(iter(report["comparisons"].values()), None)
    test = (
        f"; differences vs [{run.baseline.position}]: {comp['test']} test, {comp['resamples']:,} resamples, seed "
        f"{comp['seed']}, Holm-adjusted p <= {comp['alpha']}"
        if comp and run.baseline
        else ""
    )
    return "\n".join([*legend, f"slice {slice_name}: {n} queries{test}", *out]) + "\n"

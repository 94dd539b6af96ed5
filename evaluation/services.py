"""Evaluation writes: start an evaluation (validate, create its rows, queue the job) and execute it.

Document-level evaluation: judgments are per document, the engine ranks passages, so each configuration's passages
are aggregated to documents by their best passage score (see ``workbench.services.batch_search``). Qrels are the
project's gold qrels (``workbench.selectors.qrels_gold``). Every number is computed by ``evaluation.metrics``
under the semantics stored on the run.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from evaluation.metrics import MetricSemantics, MetricsError, evaluate_and_compare
from evaluation.models import EvalConfig, EvalRun
from evaluation.query_sets import ALL_JUDGED, QuerySetChoice, pinned_qrels, pinned_queries
from evaluation.slicing import HARD_K, all_slices, qrels_for, qrels_hash, query_set
from evaluation.trec import write_qrels, write_run
from labeling.models import LabelSnapshot
from workbench.errors import WorkbenchError
from workbench.jobs import job_create
from workbench.models import Job, ModelVersion, Project, QueryTag, SearchConfiguration
from workbench.retrieval.artifacts import atomic_directory, make_manifest, remove_stale_temp_dirs, write_manifest
from workbench.retrieval.search import MAX_K
from workbench.selectors import GOLD_RULE, judgments_counted
from workbench.services.batch_search import (
    AGGREGATION,
    PASSAGES_PER_DOC,
    PassageDocuments,
    configuration_run,
    latency_percentiles,
    passages_to_retrieve,
)
from workbench.services.configurations import search_configuration_ensure, served_configuration

JOB_KIND = "evaluation_run"
MAX_CONFIGS = 8
MIN_DEPTH = 10  # MRR@10 and nDCG@10, the headline metrics, look at the top 10
MAX_DEPTH = MAX_K // PASSAGES_PER_DOC
DEFAULT_DEPTH = 100
MIN_RESAMPLES, MAX_RESAMPLES = 100, 100_000
TEST = "randomization"
SEMANTICS_FIELDS = frozenset(f.name for f in fields(MetricSemantics))

Progress = Callable[[float, str], None]
Log = Callable[[str], None]


def semantics_for_depth(
    depth: int, *, relevance_threshold: int = 1
) -> tuple[MetricSemantics, dict[str, Any], list[str]]:
    """The pinned semantics for a depth, what is stored with every result, and notes about capped cutoffs.

    ``relevance_threshold`` is the project's (``Project.relevance_threshold``): the lowest grade binary metrics count.

    Depth rule: cutoffs deeper than the ranked lists (e.g. recall@100 at depth 50) are not reported rather than
    reported as numbers that silently mean something else. The depth is part of the stored semantics because MAP
    and the reported cutoffs depend on it, so results at different depths refuse to be compared.
    """
    base = MetricSemantics()
    recall = tuple(k for k in base.recall_ks if k <= depth)
    precision = tuple(k for k in base.precision_ks if k <= depth)
    semantics = MetricSemantics(recall_ks=recall, precision_ks=precision, relevance_threshold=relevance_threshold)
    stored = {
        **semantics.to_dict(),
        "aggregation": AGGREGATION,
        "depth": depth,
        "passages_retrieved": passages_to_retrieve(depth),
        "doc_ids": "Document.external_id",
        "qrels": GOLD_RULE,
    }
    dropped = sorted(set(base.recall_ks) - set(recall))
    notes = []
    if dropped:
        names = ", ".join(f"recall@{k} and P@{k}" for k in dropped)
        notes.append(f"{names} are not reported: they need depth ≥ {dropped[-1]}; this evaluation keeps {depth}.")
    return semantics, stored, notes


def metric_semantics(stored: dict[str, Any]) -> MetricSemantics:
    """The ``MetricSemantics`` part of stored semantics (the rest describes aggregation and depth)."""
    return MetricSemantics.from_dict({k: v for k, v in stored.items() if k in SEMANTICS_FIELDS})


def _check_int(value: Any, name: str, low: int, high: int, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorkbenchError(f"{name} must be a whole number (got {value!r}).")
    if not low <= value <= high:
        raise WorkbenchError(f"{name} must be between {low} and {high} (got {value}){why}.")
    return value


def _check_configs(project: Project, configs: Sequence[SearchConfiguration]) -> None:
    """Every configuration is already checked on its own (``search_configuration_draft``); here: the set."""
    if not configs:
        raise WorkbenchError("Add at least one configuration: an index version and a mode.")
    if len(configs) > MAX_CONFIGS:
        raise WorkbenchError(f"At most {MAX_CONFIGS} configurations per evaluation (got {len(configs)}).")
    seen: dict[tuple, int] = {}
    for n, config in enumerate(configs, start=1):
        if config.project_id != project.pk or config.index.project_id != project.pk:
            raise WorkbenchError(f"Configuration {n}: that configuration belongs to another project.")
        if config.key() in seen:
            raise WorkbenchError(f"Configuration {n} repeats configuration {seen[config.key()]}.")
        seen[config.key()] = n
    first = configs[0].index
    for n, config in enumerate(configs, start=1):
        index = config.index
        if index.corpus_id != first.corpus_id:
            raise WorkbenchError(
                f"Configurations must rank the same corpus: configuration 1 uses {first.corpus.name}, "
                f"configuration {n} uses {index.corpus.name}."
            )
        if index.corpus_version != first.corpus_version:
            raise WorkbenchError(
                f"Configurations must rank the same corpus version: {first} was built from version "
                f"{first.corpus_version} of {first.corpus.name}, {index} from version {index.corpus_version}. "
                "Rebuild the older index so every configuration sees the same documents."
            )


def _labels(configs: Sequence[SearchConfiguration], wanted: Sequence[str]) -> list[str]:
    labels: list[str] = []
    for n, config in enumerate(configs):
        given = wanted[n].strip() if n < len(wanted) else ""
        label = (given or (config.name if config.pk else "") or config.describe())[:190]
        base, i = label, 2
        while label in labels:
            label, i = f"{base} ({i})", i + 1
        labels.append(label)
    return labels


def hard_baseline_choice(configs: Sequence[EvalConfig]) -> tuple[EvalConfig, str]:
    """Whose misses define the hard subset: the base encoder in dense mode if evaluated, else the first config."""
    builtin_dense = [
        c
        for c in configs
        if c.configuration.index.encoder.source == ModelVersion.Source.BUILTIN
        and c.configuration.mode == SearchConfiguration.Mode.DENSE
    ]
    plain = [c for c in builtin_dense if c.configuration.reranker_id is None]
    if plain or builtin_dense:
        chosen = (plain or builtin_dense)[0]
        why = "the base encoder in dense mode"
    else:
        chosen = configs[0]
        why = "the first configuration, since no configuration uses the base encoder in dense mode"
    return chosen, (
        f"Hard subset: judged queries for which {chosen.label} ({why}) ranked no relevant document in its top "
        f"{HARD_K}. Audited hard negatives do not exist yet, so none are counted. The subset is chosen by that "
        "configuration's own misses, so differences against it on this slice favour the other configurations."
    )


def _check_pinned(project: Project, corpus: Any, snapshot: LabelSnapshot, split: str) -> str:
    choice = QuerySetChoice(snapshot=snapshot, split=split)
    if snapshot.project_id != project.pk:
        raise WorkbenchError("That label snapshot belongs to another project.")
    if split not in ("dev", "test"):
        raise WorkbenchError(f"Evaluate on a snapshot's dev or test split, not {split!r}: train queries were learnt.")
    if snapshot.corpus_id != corpus.pk:
        raise WorkbenchError(
            f"The snapshot {snapshot.name} judges corpus {snapshot.corpus.name}, but the configurations search "
            f"corpus {corpus.name}."
        )
    if not pinned_queries(snapshot, split).exists():
        raise WorkbenchError(f"The {choice.label} has no queries.")
    if not pinned_qrels(snapshot, split):
        raise WorkbenchError(f"No query of the {choice.label} has a gold grade.")
    return choice.label


def _check_query_set(project: Project, corpus: Any, tag: QueryTag | None) -> str:
    if tag is not None and tag.project_id != project.pk:
        raise WorkbenchError("That query tag belongs to another project.")
    label = f"tag {tag.name}" if tag else ALL_JUDGED
    queries = query_set(project, corpus, tag)
    n = queries.count()
    if tag is not None and n == 0:
        raise WorkbenchError(f"The query set {label} has no queries.")
    judged = judgments_counted(project=project, corpus=corpus).filter(query__in=queries.values("pk"))
    if not judged.exists():
        if tag is None:
            raise WorkbenchError(
                f"No query has a judgment on corpus {corpus.name} yet: import qrels or judge some queries first."
            )
        raise WorkbenchError(
            f"None of the {n} queries in {label} has a judgment on corpus {corpus.name}: import qrels or judge "
            "them first; without judgments every metric would be meaningless."
        )
    return label


def eval_run_start(
    *,
    project: Project,
    user: Any,
    configs: Sequence[SearchConfiguration],
    labels: Sequence[str] = (),
    tag: QueryTag | None = None,
    snapshot: LabelSnapshot | None = None,
    split: str = "",
    depth: int = DEFAULT_DEPTH,
    baseline: int = 1,
    resamples: int = 10_000,
    seed: int = 0,
    name: str = "",
    background: bool = True,
    progress: Progress | None = None,
    log: Log | None = None,
) -> EvalRun:
    """Validate and create an evaluation, then queue its job (or, with ``background=False``, run it here).

    ``configs`` are saved configurations or drafts (``search_configuration_draft``; saved here, or matched to an
    identical saved one); ``labels`` optionally names them in this evaluation. ``baseline`` is the 1-based position
    of the configuration the others are compared with. The query set is every judged query, a ``tag`` (both with the
    live gold), or a ``snapshot``'s dev or test ``split`` with the snapshot's frozen gold.
    """
    why = (
        f"; MRR@{MIN_DEPTH} and nDCG@10 need at least {MIN_DEPTH} documents, and {PASSAGES_PER_DOC}× depth "
        f"passages are retrieved (at most {MAX_K})"
    )
    _check_int(depth, "Depth (documents per query)", MIN_DEPTH, MAX_DEPTH, why)
    _check_int(resamples, "Resamples", MIN_RESAMPLES, MAX_RESAMPLES)
    _check_int(seed, "Seed", 0, 2**31 - 1)
    _check_configs(project, configs)
    _check_int(baseline, "Baseline", 1, len(configs), " (the number of a configuration)")
    corpus = configs[0].index.corpus
    if snapshot is not None and tag is not None:
        raise WorkbenchError("Evaluate on a query tag or on a snapshot split, not both.")
    if snapshot is not None:
        query_label = _check_pinned(project, corpus, snapshot, split)
    else:
        query_label = _check_query_set(project, corpus, tag)
    _, stored, notes = semantics_for_depth(depth, relevance_threshold=project.relevance_threshold)
    labels = _labels(configs, labels)
    name = name.strip() or f"{query_label} · {len(configs)} configuration{'s' if len(configs) > 1 else ''}"
    with transaction.atomic():
        run = EvalRun.objects.create(
            project=project,
            name=name[:200],
            query_tag=tag,
            snapshot=snapshot,
            snapshot_split=split if snapshot is not None else "",
            query_set=query_label,
            corpus=corpus,
            corpus_version=configs[0].index.corpus_version,
            depth=depth,
            semantics=stored,
            test=TEST,
            seed=seed,
            resamples=resamples,
            notes=notes,
            created_by=user,
        )
        rows = [
            EvalConfig.objects.create(
                eval_run=run,
                position=n,
                label=label,
                configuration=search_configuration_ensure(configuration=config, user=user),
                depth=depth,
            )
            for n, (config, label) in enumerate(zip(configs, labels, strict=True), start=1)
        ]
        hard, hard_note = hard_baseline_choice(rows)
        run.baseline, run.hard_baseline = rows[baseline - 1], hard
        run.notes = [*notes, hard_note]
        if background:
            run.job = job_create(
                project=project,
                kind=JOB_KIND,
                title=f"Evaluate {name}"[:300],
                params={"eval_run_id": run.pk},
                user=user,
            )
        run.save(update_fields=["baseline", "hard_baseline", "notes", "job"])
    if not background:
        try:
            eval_run_execute(eval_run=run, progress=progress, log=log)
        except BaseException:
            run.delete()  # a synchronous run that failed leaves no half evaluation behind
            raise
        run.refresh_from_db()
    return run


def _search_all(
    run: EvalRun, configs: list[EvalConfig], queries: list[tuple[str, str]], progress: Progress, log: Log
) -> dict[str, Any]:
    documents = PassageDocuments(run.corpus_id)
    total = max(1, len(queries) * len(configs))
    outcomes = {}
    for i, cfg in enumerate(configs):

        def on_query(done: int, _qid: str, i: int = i, cfg: EvalConfig = cfg) -> None:
            progress(0.9 * (i * len(queries) + done) / total, f"{cfg.label}: {done:,} / {len(queries):,} queries")

        outcome = configuration_run(cfg.configuration, queries, depth=run.depth, documents=documents, progress=on_query)
        log(f"{cfg.label}: searched {len(queries):,} queries")
        for qid, why in list(outcome.failed.items())[:5]:
            log(f"{cfg.label}: query {qid} could not be searched ({why}); it scores 0")
        outcomes[cfg.label] = outcome
    if documents.missing_count:
        log(f"{documents.missing_count} retrieved passages no longer exist (the corpus changed) and were skipped")
    return outcomes


def eval_against_served(
    *, project: Project, user: Any, configuration_id: int, snapshot_id: int | None = None, background: bool = True
) -> list[EvalRun]:
    """A candidate configuration against the served one (the baseline): on the snapshot's dev split, with its frozen
    gold, and on every held-out query tag. Returns the evaluations started (at least one, or an error says why)."""
    candidate = SearchConfiguration.objects.filter(project=project, pk=configuration_id).first()
    if candidate is None:
        raise WorkbenchError("That search configuration does not exist in this project.")
    served = served_configuration(project)
    if served is None:
        raise WorkbenchError("Nothing is served yet: serve a configuration first, then compare candidates with it.")
    if served.pk == candidate.pk:
        raise WorkbenchError(f"{candidate.name} is the served configuration: there is nothing to compare it with.")
    snapshot = LabelSnapshot.objects.filter(project=project, pk=snapshot_id).first() if snapshot_id else None
    if snapshot_id and snapshot is None:
        raise WorkbenchError("That label snapshot does not exist in this project.")
    sets: list[dict[str, Any]] = []
    if snapshot is not None and pinned_queries(snapshot, "dev").exists():
        sets.append({"snapshot": snapshot, "split": "dev"})
    sets += [{"tag": t} for t in QueryTag.objects.filter(project=project, held_out=True)]
    if not sets:
        raise WorkbenchError(
            "There is no query set to compare on: the snapshot has no dev split and no query tag is held out."
        )
    runs, errors = [], []
    for query_set_args in sets:
        try:
            runs.append(
                eval_run_start(
                    project=project,
                    user=user,
                    configs=[served, candidate],
                    labels=[f"served: {served.name}", candidate.name],
                    baseline=1,
                    background=background,
                    **query_set_args,
                )
            )
        except WorkbenchError as exc:  # e.g. a held-out tag without judgments: the others still run
            errors.append(str(exc))
    if not runs:
        raise WorkbenchError(" ".join(errors))
    return runs


def eval_run_execute(
    *, eval_run: EvalRun, job: Job | None = None, progress: Progress | None = None, log: Log | None = None
) -> dict:
    """Run every configuration over the query set, compute metrics, slices and comparisons, store them.

    Nothing is kept unless everything succeeds: the artifact directory is renamed into place when complete and the
    rows are updated in one transaction afterwards.
    """
    progress = progress or (lambda f, m: None)
    log = log or (lambda line: None)
    run = EvalRun.objects.select_related("project", "corpus", "query_tag", "snapshot", "baseline", "hard_baseline").get(
        pk=eval_run.pk
    )
    if run.is_complete:
        raise WorkbenchError(f"Evaluation {run.name} is already complete; start a new one to run it again.")
    if job is not None and run.job_id != job.pk:  # a retried job takes over the evaluation
        EvalRun.objects.filter(pk=run.pk).update(job=job)
    if run.query_tag is None and run.snapshot_id is None and run.query_set != ALL_JUDGED:
        raise WorkbenchError(f"The query set ({run.query_set}) was deleted after the evaluation was created.")
    configs = list(
        run.configs.select_related(
            "configuration__index__encoder", "configuration__index__corpus", "configuration__reranker"
        )
    )
    if run.baseline is None or run.hard_baseline is None:
        raise WorkbenchError("This evaluation has no baseline configuration.")
    project, corpus = run.project, run.corpus
    if run.snapshot_id is not None:  # frozen gold: the numbers do not move when annotators keep judging
        queries_qs = pinned_queries(run.snapshot, run.snapshot_split)
        qrels = pinned_qrels(run.snapshot, run.snapshot_split)
    else:
        queries_qs = query_set(project, corpus, run.query_tag)
        qrels = qrels_for(project, corpus, queries_qs)
    queries = list(queries_qs.values_list("external_id", "text"))
    if not qrels:
        raise WorkbenchError(f"None of the queries in {run.query_set} has a judgment on corpus {corpus.name} any more.")
    semantics = metric_semantics(run.semantics)
    log(f"{len(queries):,} queries ({len(qrels):,} judged), {len(configs)} configurations, depth {run.depth}")

    outcomes = _search_all(run, configs, queries, progress, log)
    progress(0.9, "Computing metrics, slices and significance")
    runs = {label: o.run for label, o in outcomes.items()}
    notes = list(run.notes)
    slices = all_slices(
        project=project,
        corpus=corpus,
        tag=run.query_tag,
        qrels=qrels,
        hard_baseline_run=runs[run.hard_baseline.label],
        relevance_threshold=semantics.relevance_threshold,
        notes=notes,
    )
    failed = sum(len(o.failed) for o in outcomes.values())
    if failed:
        notes.append(f"{failed} searches failed (e.g. an empty query text); those queries score 0.")
    try:
        report = evaluate_and_compare(
            runs,
            qrels,
            slices=slices,
            baseline=run.baseline.label,
            semantics=semantics,
            test=run.test,
            resamples=run.resamples,
            seed=run.seed,
            # The t-test and Wilcoxon p-values are informational only and cost seconds per comparison (scipy,
            # one call per metric x slice); verdicts use the randomization test.
            classic_tests=False,
        )
    except MetricsError as exc:
        raise WorkbenchError(f"The metrics could not be computed: {exc}") from None

    results = {
        cfg.pk: {
            "metrics": report.metrics[cfg.label].to_dict(include_per_query=True),
            "latency": latency_percentiles(outcomes[cfg.label].timings),
            "top1": outcomes[cfg.label].top1,
            "failed_queries": sorted(outcomes[cfg.label].failed),
            "queries_searched": len(queries),
        }
        for cfg in configs
    }
    report_dict = report.to_dict()
    try:
        out_dir = _write_artifacts(run, configs, runs, qrels, slices, report, results)
    except MetricsError as exc:  # an id TREC files cannot hold (e.g. an empty query id)
        raise WorkbenchError(f"The run files could not be written: {exc}") from None
    try:
        with transaction.atomic():
            for cfg in configs:
                cfg.results = results[cfg.pk]
                cfg.run_file = str(out_dir / _run_file_name(cfg))
                cfg.save(update_fields=["results", "run_file"])
            run.report = report_dict
            run.slices = slices
            run.notes = notes
            run.qrels_sha256 = qrels_hash(qrels)
            run.artifact_dir = str(out_dir)
            run.finished_at = timezone.now()
            run.save(update_fields=["report", "slices", "notes", "qrels_sha256", "artifact_dir", "finished_at"])
    except Exception:
        shutil.rmtree(out_dir, ignore_errors=True)  # no rows pointing to it, so no directory either
        raise
    n_eval = report.metrics[run.baseline.label].n_evaluated
    n_excl = report.metrics[run.baseline.label].n_excluded
    return {
        "eval_run_id": run.pk,
        "configurations": len(configs),
        "queries_evaluated": n_eval,
        "queries_excluded": n_excl,
        "message": f"Evaluated {len(configs)} configuration{'s' if len(configs) > 1 else ''} on {n_eval:,} judged "
        f"queries ({n_excl:,} without judgments excluded).",
    }


def _run_file_name(cfg: EvalConfig) -> str:
    return f"run-{cfg.position}-{cfg.configuration.mode}.trec"


def _write_artifacts(
    run: EvalRun,
    configs: list[EvalConfig],
    runs: dict[str, dict[str, dict[str, float]]],
    qrels: dict[str, dict[str, int]],
    slices: dict[str, list[str]],
    report: Any,
    results: dict[int, dict],
) -> Path:
    evals_dir = Path(settings.ARTIFACTS_DIR) / "evals"
    evals_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(evals_dir)
    final = evals_dir / f"{run.pk}-{uuid.uuid4().hex[:12]}"
    with atomic_directory(final) as tmp:
        for cfg in configs:
            write_run(runs[cfg.label], tmp / _run_file_name(cfg), tag=cfg.run_tag, depth=run.depth)
        write_qrels(qrels, tmp / "qrels.txt")
        full = {
            "semantics": run.semantics,
            "slices": slices,
            "report": report.to_dict(include_per_query=True),
            "latency": {cfg.label: results[cfg.pk]["latency"] for cfg in configs},
        }
        (tmp / "report.json").write_text(json.dumps(full, indent=1, sort_keys=True), encoding="utf-8")
        write_manifest(
            tmp,
            make_manifest(
                "evaluation",
                parameters={
                    "project": run.project.slug,
                    "eval_run_id": run.pk,
                    "query_set": run.query_set,
                    "corpus_id": run.corpus_id,
                    "corpus_version": run.corpus_version,
                    "depth": run.depth,
                    "seed": run.seed,
                    "resamples": run.resamples,
                    "test": run.test,
                    "configs": [
                        {
                            "label": c.label,
                            "run_file": _run_file_name(c),
                            "search_configuration_id": c.configuration_id,
                            "search_configuration": c.configuration.name,
                            "index_version_id": c.configuration.index_id,
                            "mode": c.configuration.mode,
                            "alpha": c.configuration.alpha,
                            "fusion_depth": c.configuration.fusion_depth,
                            "reranker_id": c.configuration.reranker_id,
                            "rerank_top_n": c.configuration.rerank_top_n,
                        }
                        for c in configs
                    ],
                },
                metrics={c.label: report.metrics[c.label].means() for c in configs},
                semantics=run.semantics,
            ),
        )
    return final

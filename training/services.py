"""Training runs: start (validated, queued), execute (the job body), and the follow-ups a finished run offers.

Training itself is ``training.ml`` (Django-free); this module loads the snapshot as plain data, reports the trainer's
loss, dev metrics, progress and ETA into the Job, registers the result as a ``ModelVersion`` only when it beats its
base on dev (or when there is no dev split to tell), and builds the index / saves the configuration on request.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from labeling.models import LabelSnapshot
from labeling.selectors import snapshot_data
from labeling.services.snapshots import DEFAULT_DEV_FRACTION, snapshot_freeze
from training.ml.config import (
    BiEncoderConfig,
    CrossEncoderConfig,
    DistillConfig,
    LoraSettings,
    TrainingConfig,
    TrainingInputError,
    config_from_dict,
)
from training.ml.datasets import DocumentVectors
from training.ml.distill import DistillResult, check_teacher, model_layers, train_distilled_reranker
from training.ml.train import TrainingHooks, TrainResult, train_bi_encoder, train_cross_encoder
from training.models import TrainingRun
from training.selectors import stored_document_vectors, training_corpus
from workbench.errors import PermanentJobError, WorkbenchError
from workbench.jobs import JobReporter, SmoothedRate, job_create
from workbench.models import Corpus, IndexVersion, Job, ModelVersion, Project, SearchConfiguration
from workbench.retrieval import encoders
from workbench.retrieval.errors import RetrievalError
from workbench.services.backends import rerank_budget_fit
from workbench.services.configurations import (
    search_configuration_draft,
    search_configuration_ensure,
    served_configuration,
)
from workbench.services.engines import torch_threads_apply
from workbench.services.indexes import encoder_base_ensure, index_build_start

DEFAULTS: dict[str, TrainingConfig] = {
    "bi_encoder": BiEncoderConfig(),
    "cross_encoder": CrossEncoderConfig(),
    "distill": DistillConfig(),
}


def training_config(kind: str, params: dict[str, Any]) -> TrainingConfig:
    """The kind's default recipe overridden by ``params`` (None values keep the default), checked."""
    if kind not in DEFAULTS:
        raise WorkbenchError(f"Unknown training kind {kind!r}: use bi_encoder, cross_encoder or distill.")
    merged = DEFAULTS[kind].as_dict()
    for key, value in params.items():
        if value is None:
            continue
        if key in ("mining", "lora") and isinstance(value, dict):
            start = merged.get(key) or asdict(LoraSettings())
            merged[key] = {**start, **{k: v for k, v in value.items() if v is not None}}
        else:
            merged[key] = value
    try:
        config = config_from_dict(kind, merged)
        config.check()
    except (TrainingInputError, TypeError) as exc:
        raise WorkbenchError(str(exc)) from None
    return config


def training_run_start(
    *,
    project: Project,
    user: Any,
    snapshot: LabelSnapshot | None,
    kind: str,
    base: ModelVersion | None,
    first_stage: ModelVersion | None = None,
    name: str = "",
    params: dict[str, Any] | None = None,
    freeze: tuple[Corpus, str, float | None] | None = None,
    teacher: ModelVersion | None = None,
) -> TrainingRun:
    """Check the recipe and its inputs, then queue the run (on ``TRAINING_QUEUE``). ``base`` None: the built-in
    encoder. A reranker starts from a bi-encoder (fresh head) or an earlier trained reranker; its negatives are mined
    with ``first_stage`` (default: the built-in encoder). A distillation run needs ``teacher`` (a trained reranker of
    the project); its student starts from the teacher (``base`` is then the teacher) or from a bi-encoder ``base``.
    ``freeze`` = (corpus, source, dev share) freezes a new snapshot in the same transaction instead of taking
    ``snapshot``."""
    config = training_config(kind, params or {})
    with transaction.atomic():
        if snapshot is None:
            if freeze is None:
                raise WorkbenchError("Pick a snapshot, or freeze a new one.")
            corpus, source, dev_fraction = freeze
            if corpus.project_id != project.pk:
                raise WorkbenchError("That corpus belongs to another project.")
            snapshot = snapshot_freeze(
                project=project,
                corpus=corpus,
                name=f"{corpus.name} {source} {timezone.now():%Y-%m-%d %H:%M:%S}",
                user=user if getattr(user, "is_authenticated", False) else None,
                source=source,
                dev_fraction=DEFAULT_DEV_FRACTION if dev_fraction is None else dev_fraction,
                seed=config.seed,
            )
        if snapshot.project_id != project.pk:
            raise WorkbenchError("That snapshot belongs to another project.")
        if isinstance(config, DistillConfig):
            base = _distill_inputs(project=project, config=config, teacher=teacher, base=base)
        else:
            teacher = None
        base = base or encoder_base_ensure(project=project)
        if base.project_id != project.pk:
            raise WorkbenchError("That base model belongs to another project.")
        if base.kind == ModelVersion.Kind.LORA_ADAPTER:
            raise WorkbenchError("A LoRA adapter cannot be a base: pick the model it was trained on.")
        if kind == "bi_encoder" and base.kind != ModelVersion.Kind.BI_ENCODER:
            raise WorkbenchError(
                f"{base.name} is a {base.get_kind_display()}; a bi-encoder run needs a bi-encoder base."
            )
        if kind in ("cross_encoder", "distill"):
            if base.kind == ModelVersion.Kind.CROSS_ENCODER and not base.usable_for_search:
                raise WorkbenchError(f"{base.name} has an untrained head; start from a bi-encoder instead.")
            first_stage = first_stage or encoder_base_ensure(project=project)
            if first_stage.project_id != project.pk or first_stage.kind != ModelVersion.Kind.BI_ENCODER:
                raise WorkbenchError("Negatives for a reranker are mined with a bi-encoder of this project.")
        else:
            first_stage = None
        stats = snapshot.stats or {}
        lora = " LoRA" if getattr(config, "lora", None) else ""
        name = (name or "").strip() or f"{snapshot.name} · {kind.replace('_', '-')}{lora}"
        run = TrainingRun.objects.create(
            project=project,
            name=name[:200],
            snapshot=snapshot,
            kind=kind,
            lora=getattr(config, "lora", None) is not None,
            base=base,
            first_stage=first_stage,
            teacher=teacher,
            params=config.as_dict(),
            created_by=user if getattr(user, "is_authenticated", False) else None,
            metrics={"snapshot_stats": stats},
        )
        run.job = job_create(
            project=project, kind="training_run", title=f"Train {run.name}", params={"run_id": run.pk}, user=user
        )
        run.save(update_fields=["job"])
    return run


def _distill_inputs(
    *, project: Project, config: DistillConfig, teacher: ModelVersion | None, base: ModelVersion | None
) -> ModelVersion | None:
    """Refuse a distillation whose teacher is not a trained reranker of the project, or whose student would keep
    more layers than it starts with; return the student's start (the teacher, or the bi-encoder ``base``)."""
    if teacher is None:
        raise WorkbenchError("Pick the teacher: a trained reranker of this project.")
    if teacher.project_id != project.pk:
        raise WorkbenchError("That teacher belongs to another project.")
    if teacher.kind != ModelVersion.Kind.CROSS_ENCODER:
        raise WorkbenchError(
            f"{teacher.name} is a {teacher.get_kind_display()}; the teacher must be a trained cross-encoder reranker."
        )
    if not teacher.usable_for_search:
        raise WorkbenchError(f"{teacher.name} has an untrained head; the teacher must be a trained reranker.")
    try:
        teacher_layers = check_teacher(teacher.path)
    except (TrainingInputError, RetrievalError) as exc:
        raise WorkbenchError(str(exc)) from None
    if config.student_init == "teacher":
        start, source, layers = teacher, "teacher", teacher_layers
    else:
        start = base or encoder_base_ensure(project=project)
        if start.kind != ModelVersion.Kind.BI_ENCODER:
            raise WorkbenchError("A student with a fresh head starts from a bi-encoder; pick one as the base.")
        source, layers = "base model", model_layers(start.path) or 0
    if config.student_layers > layers:
        raise WorkbenchError(f"The student cannot keep {config.student_layers} layers: the {source} has only {layers}.")
    return start


class _Hooks:
    """Trainer events -> Job: loss and dev metric series, progress with a smoothed ETA, log lines, cancellation."""

    def __init__(self, report: JobReporter) -> None:
        self.report = report
        self.rate = SmoothedRate()
        self.last_loss: float | None = None

    def loss(self, step: int, value: float) -> None:
        self.last_loss = value
        self.report.metric({"loss": value}, step=step)

    def evaluate(self, step: int, metrics: dict[str, float]) -> None:
        wanted = {k: v for k, v in metrics.items() if k.endswith("ndcg@10")}
        if wanted:
            self.report.metric(
                {k.removeprefix("eval_").replace("cosine_", ""): v for k, v in wanted.items()}, step=step
            )
            self.report.log(f"dev at step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(wanted.items())))

    def progress(self, step: int, total: int, message: str) -> None:
        rate = self.rate.update(step)
        eta = self.rate.eta_s(total - step) if rate else None
        parts = [f"step {step}/{total}"]
        if rate:
            parts.append(f"{rate:.2f} steps/s" if rate >= 1 else f"{1 / rate:.1f} s/step")
        if eta is not None:
            parts.append(f"ETA {eta / 60:.0f} min" if eta >= 90 else f"ETA {eta:.0f} s")
        if self.last_loss is not None:
            parts.append(f"loss {self.last_loss:.4f}")
        self.report.progress(0.1 + 0.85 * step / max(1, total), " · ".join(parts))
        self.report.check_cancel()

    def as_hooks(self) -> TrainingHooks:
        return TrainingHooks(
            on_loss=self.loss, on_eval=self.evaluate, on_progress=self.progress, on_log=self.report.log
        )


def training_run_execute(*, job: Job, report: JobReporter) -> dict:
    """The job body: train, then record the outcome (and a model version when the run beats its base)."""
    run = TrainingRun.objects.select_related("snapshot__corpus", "base", "first_stage", "teacher", "project").get(
        pk=job.params["run_id"]
    )
    TrainingRun.objects.filter(pk=run.pk).update(job=job, outcome=TrainingRun.Outcome.PENDING, finished_at=None)
    torch_threads_apply(settings.TORCH_THREADS)
    config = training_config(run.kind, run.params)
    report.progress(0.01, "Loading the snapshot and the collection", force=True)
    data = snapshot_data(run.snapshot)
    corpus = training_corpus(run.snapshot.corpus)
    report.log(
        f"snapshot {data.content_hash[:12]}: "
        + ", ".join(f"{len(data.query_ids(s))} {s}" for s in ("train", "dev", "test"))
        + f" queries; {len(corpus)} documents to mine negatives from"
    )
    mining_vectors = _mining_vectors(run, config, report)
    dest = Path(settings.ARTIFACTS_DIR) / "models" / f"trained-{run.pk}-job{job.pk}"
    hooks = _Hooks(report).as_hooks()
    started = time.monotonic()
    try:
        if run.kind == "bi_encoder":
            result = train_bi_encoder(
                data, config, base_path=run.base.path, output_dir=dest, corpus=corpus, hooks=hooks,
                keep_if_not_improved=False, mining_vectors=mining_vectors,
            )  # fmt: skip
        elif run.kind == "distill":
            result = train_distilled_reranker(
                data, config, teacher_path=run.teacher.path, base_path=run.base.path,
                first_stage_path=run.first_stage.path, output_dir=dest, corpus=corpus, hooks=hooks,
                keep_if_not_improved=False, mining_vectors=mining_vectors,
            )  # fmt: skip
        else:
            result = train_cross_encoder(
                data, config, base_path=run.base.path, first_stage_path=run.first_stage.path, output_dir=dest,
                corpus=corpus, hooks=hooks, keep_if_not_improved=False, mining_vectors=mining_vectors,
            )  # fmt: skip
    except TrainingInputError as exc:
        raise PermanentJobError(str(exc)) from None
    report.progress(0.97, "Registering the model", force=True)
    return _record(run=run, job=job, result=result, wall_s=time.monotonic() - started)


def _mining_vectors(run: TrainingRun, config: TrainingConfig, report: JobReporter) -> DocumentVectors | None:
    """The mining model's vectors from an index already built with it (the base for a bi-encoder, the first stage for
    a reranker), so a run does not embed the whole collection again; None when no such index is current."""
    miner = run.base if run.kind == "bi_encoder" else run.first_stage
    if miner is None:
        return None
    length = (
        config.max_seq_length if run.kind == "bi_encoder" else min(miner.max_seq_length or 10**9, config.max_seq_length)
    )
    found = stored_document_vectors(run.snapshot.corpus, miner, max_seq_length=length)
    if found is None:
        report.log(f"no current index built with {miner.name} at {length} tokens: mining embeds the collection")
        return None
    vectors, index = found
    report.log(f"mining reads the vectors of index v{index.number} ({index.encoder.name}) instead of re-embedding")
    return vectors


def _record(*, run: TrainingRun, job: Job, result: TrainResult, wall_s: float) -> dict:
    outcome = (
        TrainingRun.Outcome.UNMEASURED
        if result.improved is None
        else TrainingRun.Outcome.IMPROVED
        if result.improved
        else TrainingRun.Outcome.NOT_IMPROVED
    )
    metrics = {
        "dev_metric": result.dev_metric,
        "base_dev": result.base_dev,
        "best_dev": result.best_dev,
        "dev_history": result.dev_history,
        "steps": result.steps,
        "train_seconds": round(result.train_seconds, 1),
        "wall_seconds": round(wall_s, 1),
        "counts": result.counts,
        "hardware": result.hardware,
    }
    if result.blend is not None:
        metrics["blend"] = result.blend.as_dict()
    if isinstance(result, DistillResult):
        metrics["distillation"] = {
            "teacher_dev": result.teacher_dev,
            "student_dev": result.best_dev,
            "first_stage_dev": result.first_stage_dev,
            "delta_points": None if result.delta_points is None else round(result.delta_points, 2),
            "tolerance_points": result.tolerance_points,
            "teacher_layers": result.teacher_layers,
            "student_layers": result.student_layers,
            "student_kept_layers": [i + 1 for i in result.kept_layers],  # 1-based, as people count layers
            "teacher_max_length": result.teacher_max_length,
            "student_max_length": result.student_max_length,
            "speed": result.speed,
        }
    with transaction.atomic():
        version = None
        if result.artifact_path is not None:
            version = _model_version(run=run, job=job, result=result)
        TrainingRun.objects.filter(pk=run.pk).update(
            outcome=outcome,
            verdict=result.verdict,
            metrics={**(run.metrics or {}), **metrics},
            warnings=result.warnings,
            model_version=version,
            finished_at=timezone.now(),
        )
    message = result.verdict + (f" Registered as model {version.name}." if version else "")
    return {"message": message, "run_id": run.pk, "model_version_id": version.pk if version else None}


def _model_version(*, run: TrainingRun, job: Job, result: TrainResult) -> ModelVersion:
    path = Path(result.artifact_path)
    kind = (
        ModelVersion.Kind.LORA_ADAPTER
        if run.lora
        else ModelVersion.Kind.CROSS_ENCODER
        if run.kind == TrainingRun.Kind.DISTILL
        else run.kind
    )
    dimension = max_len = None
    if kind == ModelVersion.Kind.BI_ENCODER:
        model = encoders.load_encoder(path)
        dimension, max_len = encoders.embedding_dimension(model), encoders.max_seq_length(model)
    elif isinstance(result, DistillResult):
        max_len = result.student_max_length  # the student may read fewer tokens than its teacher: say so
    name = f"{run.name} (run {run.pk}, job {job.pk})"[:200]
    return ModelVersion.objects.create(
        project=run.project,
        name=name,
        kind=kind,
        source=ModelVersion.Source.TRAINED,
        path=str(path),
        base=run.base,
        fingerprint=encoders.model_fingerprint(path),
        dimension=dimension,
        max_seq_length=max_len,
        # only a trained reranker head is offered for search; an adapter loads on its base, not on its own
        usable_for_search=kind != ModelVersion.Kind.LORA_ADAPTER,
        manifest=result.manifest,
        created_by=run.created_by,
    )


def training_run_build_index(*, run: TrainingRun, user: Any) -> Job:
    """Queue an index of the snapshot's corpus with the run's new bi-encoder (auto index type)."""
    version = run.model_version
    if run.kind != "bi_encoder" or version is None or version.kind != ModelVersion.Kind.BI_ENCODER:
        raise WorkbenchError("Only a run that produced a full bi-encoder can build an index.")
    with transaction.atomic():
        job = index_build_start(
            project=run.project, corpus=run.snapshot.corpus, encoder=version, index_type="auto", params={}, user=user
        )
        TrainingRun.objects.filter(pk=run.pk).update(index_job=job)
    return job


def recommended_rerank_weight(version: ModelVersion) -> float:
    """The weight against the first stage a reranker's training run chose on dev (1: the reranker alone)."""
    blend = ((version.manifest or {}).get("metrics") or {}).get("blend") or {}
    weight = blend.get("weight", 1.0)
    return float(weight) if isinstance(weight, (int, float)) and 0.0 < weight <= 1.0 else 1.0


def recommended_rerank_depth(version: ModelVersion, *, top_n: int = 50) -> int:
    """The first-stage candidates a reranker rescores in a configuration saved from its run: all ``top_n``, or
    fewer when its backend measurement on this CPU predicts ``top_n`` over the rerank budget (RERANK_BUDGET_MS)."""
    fit = rerank_budget_fit(version, top_n=top_n)
    return fit.depth if fit is not None else top_n


def training_run_configure(*, run: TrainingRun, user: Any) -> SearchConfiguration:
    """Save the search configuration that uses what the run produced, shaped like the served one: the new index in
    the served mode (hybrid if nothing is served), or the served first stage with the new reranker."""
    served = served_configuration(run.project)
    version = run.model_version
    if version is None:
        raise WorkbenchError("This run produced no model to configure.")
    if run.kind == "bi_encoder":
        index = (
            IndexVersion.objects.filter(project=run.project, encoder=version, corpus=run.snapshot.corpus)
            .order_by("-created_at")
            .first()
        )
        if index is None:
            raise WorkbenchError("Build an index with the new encoder first.")
        draft = search_configuration_draft(
            project=run.project,
            index=index,
            mode=served.mode if served else "hybrid",
            alpha=served.alpha if served else 0.5,
            reranker=served.reranker if served else None,
            rerank_top_n=served.rerank_top_n if served else 50,
            name=f"{run.name} · trained encoder",
        )
    else:
        index = (
            served.index if served else IndexVersion.objects.filter(project=run.project).order_by("-created_at").first()
        )
        if index is None:
            raise WorkbenchError("Build an index first: a reranker reranks a first stage.")
        draft = search_configuration_draft(
            project=run.project,
            index=index,
            mode=served.mode if served else "hybrid",
            alpha=served.alpha if served else 0.5,
            reranker=version,
            rerank_top_n=recommended_rerank_depth(version),
            rerank_weight=recommended_rerank_weight(version),
            name=f"{run.name} · trained reranker",
        )
    with transaction.atomic():
        configuration = search_configuration_ensure(configuration=draft, user=user)
        TrainingRun.objects.filter(pk=run.pk).update(configuration=configuration)
    return configuration

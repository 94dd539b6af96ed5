"""Writes for projects, memberships, corpora and import jobs. Views call these; they never write themselves."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils.text import slugify

from workbench.errors import WorkbenchError
from workbench.jobs import job_create
from workbench.models import Corpus, Job, Judgment, Membership, Project, Role
from workbench.retrieval.chunking import ChunkingError, validate_params
from workbench.selectors import corpus_dependents
from workbench.services.indexes import encoder_base_ensure

MAX_GRADE = 10  # a wider scale is not a relevance scale annotators can use


def project_create(*, name: str, description: str = "", user: Any, slug: str | None = None) -> Project:
    """Create a project; its creator becomes its admin. ``user=None`` (the shell) creates it with no members.

    The base encoder is registered with it, so pages never need to write it on a GET."""
    slug = slugify(slug or name)[:80]
    if not slug:
        raise WorkbenchError("A project needs a name with at least one letter or digit.")
    if Project.objects.filter(slug=slug).exists():
        raise WorkbenchError(f"A project with the address {slug!r} already exists; choose another name.")
    with transaction.atomic():
        project = Project.objects.create(name=name.strip(), slug=slug, description=description, created_by=user)
        if user is not None:
            Membership.objects.create(project=project, user=user, role=Role.ADMIN, added_by=user)
        encoder_base_ensure(project=project)
    return project


def project_grade_scale_set(
    *, project: Project, grade_min: int, grade_max: int, labels: list[str], relevance_threshold: int, by: Any
) -> Project:
    """Set the project's relevance grade scale, its labels and the lowest grade binary metrics count as relevant.

    Refused when existing judgments have grades outside the new scale (they would silently change meaning), so a
    scale can grow freely but shrinks only over grades nobody used. Evaluations already run keep the threshold
    they stored; new ones use the new one (and are not compared with older ones computed differently).
    ``by`` is who asked: the view has checked their role.
    """
    if not 0 <= grade_min < grade_max <= MAX_GRADE:
        raise WorkbenchError(
            f"The scale must run from a lowest grade of 0 or more up to a higher grade of at most {MAX_GRADE} "
            f"(got {grade_min}–{grade_max}); grades such as TREC's -1 are mapped in when importing (--grade-map=-1:0)."
        )
    if not max(1, grade_min + 1) <= relevance_threshold <= grade_max:
        raise WorkbenchError(
            f"The relevance threshold must be above the lowest grade, at least 1 and at most {grade_max} "
            f"(got {relevance_threshold})."
        )
    labels = [str(label).strip() for label in labels if str(label).strip()]
    n_grades = grade_max - grade_min + 1
    if labels and len(labels) != n_grades:
        raise WorkbenchError(
            f"Give one label per grade, lowest first: {n_grades} for {grade_min}–{grade_max} (got {len(labels)}), "
            "or none to show the numbers."
        )
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        outside = (
            Judgment.objects.filter(project=locked)
            .filter(Q(grade__lt=grade_min) | Q(grade__gt=grade_max))
            .values("grade")
            .annotate(n=Count("id"))
            .order_by("grade")
        )
        if outside:
            total = sum(row["n"] for row in outside)
            detail = ", ".join(f"{row['n']:,} with grade {row['grade']}" for row in outside)
            raise WorkbenchError(
                f"The scale cannot become {grade_min}–{grade_max}: {total:,} existing judgment"
                f"{'s are' if total != 1 else ' is'} outside it ({detail}). Keep a scale that covers them, or "
                "change those judgments first."
            )
        locked.grade_min, locked.grade_max = grade_min, grade_max
        locked.grade_labels = labels or [str(g) for g in range(grade_min, grade_max + 1)]
        locked.relevance_threshold = relevance_threshold
        locked.save(update_fields=["grade_min", "grade_max", "grade_labels", "relevance_threshold"])
    project.refresh_from_db()
    return project


def membership_set(*, project: Project, username: str, role: str, by: Any) -> Membership:
    """Add a user to a project with a role, or change their role."""
    if role not in Role.values:
        raise WorkbenchError(f"Unknown role {role!r}.")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise WorkbenchError(f"No user called {username!r}; an administrator creates accounts in Django admin.")
    with transaction.atomic():
        membership, _ = Membership.objects.select_for_update().get_or_create(
            project=project, user=user, defaults={"role": role, "added_by": by}
        )
        if membership.role != role:
            _keep_one_admin(project, membership, role)
            membership.role = role
            membership.save(update_fields=["role"])
    return membership


def _keep_one_admin(project: Project, membership: Membership, new_role: str | None) -> None:
    others = Membership.objects.filter(project=project, role=Role.ADMIN).exclude(pk=membership.pk)
    if membership.role == Role.ADMIN and new_role != Role.ADMIN and not others.exists():
        raise WorkbenchError("A project needs at least one admin; make someone else admin first.")


def membership_remove(*, membership: Membership) -> None:
    with transaction.atomic():
        _keep_one_admin(membership.project, membership, None)
        membership.delete()


def corpus_create(
    *, project: Project, name: str, user: Any, chunk_size: int = 224, chunk_overlap: int = 32, description: str = ""
) -> Corpus:
    try:
        validate_params(chunk_size, chunk_overlap)
    except ChunkingError as exc:
        raise WorkbenchError(str(exc)) from None
    try:
        with transaction.atomic():
            return Corpus.objects.create(
                project=project,
                name=name.strip(),
                description=description,
                chunk_size=chunk_size,
                chunk_overlap=chunk_overlap,
                created_by=user,
            )
    except IntegrityError:
        raise WorkbenchError(f"This project already has a corpus called {name!r}.") from None


def corpus_delete(*, corpus: Corpus, by: Any) -> None:
    """Delete a corpus with its documents, passages, imported judgments and import records, when nothing depends
    on it: refused, naming them, while index versions or evaluations use it (PROTECT keys), people's judgments are
    on its documents, or a job is about to write into it. ``by`` is who asked: the view has checked their role."""
    with transaction.atomic():
        locked = Corpus.objects.select_for_update().get(pk=corpus.pk)
        blockers = corpus_dependents(locked)
        if blockers:
            raise WorkbenchError(
                f"Corpus {corpus.name} cannot be deleted: {', '.join(blockers)} depend on it. Delete those first."
            )
        locked.delete()


def corpus_create_with_upload(
    *,
    project: Project,
    name: str,
    files: list[UploadedFile],
    user: Any,
    chunk_size: int = 224,
    chunk_overlap: int = 32,
    description: str = "",
) -> tuple[Corpus, Job]:
    """Create a corpus and queue the import of its first files, in one transaction: no corpus without its job.

    If that import then fails for good (a malformed file), the import deletes the corpus again, since it never held
    a document (``imports.corpus_import``); so a bad first upload leaves no empty corpus behind.
    """
    staging, staged = _stage_uploads(files)
    try:
        with transaction.atomic():
            corpus = corpus_create(
                project=project,
                name=name,
                user=user,
                chunk_size=chunk_size,
                chunk_overlap=chunk_overlap,
                description=description,
            )
            job = _import_job_create(
                project=project, kind="corpus", corpus=corpus, staging=staging, staged=staged, user=user
            )
    except Exception:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return corpus, job


def _stage_uploads(files: list[UploadedFile]) -> tuple[str, list[dict[str, str]]]:
    """Save uploads to disk for the worker; refuse oversize and empty files before anything is queued."""
    if not files:
        raise WorkbenchError("Choose at least one file to upload.")
    for f in files:
        if f.size == 0:
            raise WorkbenchError(f"{f.name}: the file is empty")
        if f.size > settings.IMPORT_MAX_BYTES:
            raise WorkbenchError(
                f"{f.name}: the file is {f.size / 1e6:.1f} MB, over the import limit of "
                f"{settings.IMPORT_MAX_BYTES / 1e6:.1f} MB"
            )
    staging = settings.UPLOAD_DIR / uuid.uuid4().hex
    staging.mkdir(parents=True)
    staged = []
    for i, f in enumerate(files):
        name = Path(f.name).name or f"upload-{i}"
        dest = staging / f"{i:04d}-{name}"
        with open(dest, "wb") as out:
            for chunk in f.chunks():
                out.write(chunk)
        staged.append({"path": str(dest), "name": name})
    return str(staging), staged


def import_job_start(
    *,
    project: Project,
    kind: str,
    files: list[UploadedFile],
    user: Any,
    corpus: Corpus | None = None,
    options: dict | None = None,
) -> Job:
    """Stage uploaded files and queue an import job (kind: corpus, queries or qrels)."""
    if kind not in {"corpus", "queries", "qrels"}:
        raise WorkbenchError(f"Unknown import kind {kind!r}")
    if kind in {"corpus", "qrels"} and corpus is None:
        raise WorkbenchError("Choose the corpus to import into.")
    staging, staged = _stage_uploads(files)
    try:
        with transaction.atomic():
            return _import_job_create(
                project=project, kind=kind, corpus=corpus, staging=staging, staged=staged, user=user, options=options
            )
    except Exception:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _import_job_create(
    *,
    project: Project,
    kind: str,
    corpus: Corpus | None,
    staging: str,
    staged: list[dict[str, str]],
    user: Any,
    options: dict | None = None,
) -> Job:
    names = ", ".join(s["name"] for s in staged)
    target = f" into {corpus.name}" if corpus else ""
    params = {"staging": staging, "files": staged, "corpus_id": corpus.pk if corpus else None, **(options or {})}
    return job_create(
        project=project, kind=f"import_{kind}", title=f"Import {kind}{target}: {names}"[:300], params=params, user=user
    )


def api_token_create(*, user: Any, name: str) -> str:
    """Create a personal API token; the key is returned once and only its hash is stored."""
    import hashlib
    import secrets

    from workbench.models import ApiToken

    key = "wb_" + secrets.token_urlsafe(32)
    ApiToken.objects.create(
        user=user, name=name.strip()[:100], key_hash=hashlib.sha256(key.encode()).hexdigest(), prefix=key[:8]
    )
    return key


def api_token_revoke(*, user: Any, token_id: int) -> None:
    from workbench.models import ApiToken

    deleted, _ = ApiToken.objects.filter(user=user, pk=token_id).delete()
    if not deleted:
        raise WorkbenchError("No such token.")

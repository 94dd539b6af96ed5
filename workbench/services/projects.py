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
from django.utils.text import slugify

from workbench.errors import WorkbenchError
from workbench.jobs import job_create
from workbench.models import Corpus, Job, Membership, Project, Role
from workbench.retrieval.chunking import ChunkingError, validate_params


def project_create(*, name: str, description: str = "", user: Any, slug: str | None = None) -> Project:
    """Create a project; its creator becomes its admin."""
    slug = slugify(slug or name)[:80]
    if not slug:
        raise WorkbenchError("A project needs a name with at least one letter or digit.")
    if Project.objects.filter(slug=slug).exists():
        raise WorkbenchError(f"A project with the address {slug!r} already exists; choose another name.")
    with transaction.atomic():
        project = Project.objects.create(name=name.strip(), slug=slug, description=description, created_by=user)
        Membership.objects.create(project=project, user=user, role=Role.ADMIN, added_by=user)
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
    names = ", ".join(s["name"] for s in staged)
    target = f" into {corpus.name}" if corpus else ""
    params = {"staging": staging, "files": staged, "corpus_id": corpus.pk if corpus else None, **(options or {})}
    try:
        with transaction.atomic():
            return job_create(
                project=project,
                kind=f"import_{kind}",
                title=f"Import {kind}{target}: {names}"[:300],
                params=params,
                user=user,
            )
    except Exception:
        shutil.rmtree(staging, ignore_errors=True)
        raise


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

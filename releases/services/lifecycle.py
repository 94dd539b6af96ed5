"""A release's life: proposed -> approved -> active -> retired (and back to active by rollback), or rejected.

Activation writes the core's serving record (``workbench.services.configurations.serving_set``): the release's
configuration is loaded and queried in this process first (files gone or a changed model fingerprint are refused
before anything switches), then one transaction, under a lock on the project row, retires the active release, marks
the new one active (a partial unique constraint allows one active release per project) and switches what is served.
A caller states which release it saw active; if another lead switched in between, the request is refused, so of two
concurrent activations exactly one wins and the other is told who did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from evaluation.models import EvalRun
from releases.models import AuditEvent, Release
from releases.services.gates import gates_blocking, gates_evaluate
from workbench.errors import WorkbenchError
from workbench.models import ModelVersion, Project, QueryTag, SearchConfiguration
from workbench.retrieval.encoders import model_fingerprint
from workbench.retrieval.errors import RetrievalError
from workbench.services.configurations import serving_keep_warm_set, serving_set
from workbench.services.engines import configuration_warm


def audit(*, project: Project, action: str, user: Any, release: Release | None = None, **detail: Any) -> AuditEvent:
    return AuditEvent.objects.create(
        project=project,
        release=release,
        actor=user if getattr(user, "is_authenticated", False) else None,
        action=action,
        detail=detail,
    )


def _lineage(configuration: SearchConfiguration) -> dict[str, Any]:
    """Where the models came from: versions, bases, and the training manifests' snapshot and run ids."""

    def model(m: ModelVersion | None) -> dict[str, Any] | None:
        if m is None:
            return None
        manifest = m.manifest or {}
        return {
            "id": m.pk,
            "name": m.name,
            "kind": m.kind,
            "source": m.source,
            "base": m.base.name if m.base_id else None,
            "fingerprint": m.fingerprint,
            "training_run": manifest.get("training_run_id"),
            "snapshot": manifest.get("snapshot_hash") or (manifest.get("snapshot") or {}).get("hash"),
        }

    index = configuration.index
    return {
        "configuration": {"id": configuration.pk, "name": configuration.name, "description": configuration.describe()},
        "index": {"id": index.pk, "corpus": index.corpus.name, "number": index.number, "type": index.index_type},
        "encoder": model(index.encoder),
        "reranker": model(configuration.reranker),
    }


def release_propose(
    *,
    project: Project,
    configuration: SearchConfiguration,
    eval_runs: list[EvalRun],
    user: Any,
    name: str = "",
    notes: str = "",
    generator: dict[str, Any] | None = None,
    golden_tag: QueryTag | None = None,
    answer_runs: list[Any] | None = None,
) -> Release:
    """Propose a release judged by frozen evaluation reports; its gates are evaluated at once and recorded."""
    if configuration.project_id != project.pk:
        raise WorkbenchError("That configuration belongs to another project.")
    if any(run.project_id != project.pk for run in eval_runs):
        raise WorkbenchError("An evaluation of another project cannot judge this release.")
    unfinished = [run.name for run in eval_runs if not run.is_complete]
    if unfinished:
        raise WorkbenchError(f"Evaluations still running or failed cannot judge a release: {', '.join(unfinished)}.")
    if golden_tag is None:
        golden_tag = next((run.query_tag for run in eval_runs if run.query_tag and run.query_tag.held_out), None)
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        number = (Release.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
        release = Release.objects.create(
            project=project,
            number=number,
            name=(name.strip() or configuration.name)[:200],
            configuration=configuration,
            generator=generator or {},
            golden_tag=golden_tag,
            notes=notes,
            lineage=_lineage(configuration),
            proposed_by=user if getattr(user, "is_authenticated", False) else None,
        )
        release.eval_runs.set(eval_runs)
        answer_runs = answer_runs or []
        if any(run.project_id != project.pk or run.configuration_id != configuration.pk for run in answer_runs):
            raise WorkbenchError("Answer runs judging a release must be of this project and its search configuration.")
        release.answer_runs.set(answer_runs)
        first = next((r for r in answer_runs if r.backend), None)
        if first is not None and not release.generator:
            release.generator = {"backend": first.backend, "settings": first.backend_settings}
            release.save(update_fields=["generator"])
        audit(project=project, action="proposed", user=user, release=release, evaluations=[r.pk for r in eval_runs])
        release_gates_refresh(release=release, user=user)
    return release


def release_gates_refresh(*, release: Release, user: Any) -> list[dict[str, Any]]:
    gates = [g.to_dict() for g in gates_evaluate(release)]
    Release.objects.filter(pk=release.pk).update(gates=gates, gates_at=timezone.now())
    release.gates, release.gates_at = gates, timezone.now()
    audit(project=release.project, action="gates evaluated", user=user, release=release, gates=gates)
    return gates


def release_approve(*, release: Release, user: Any, reason: str = "") -> Release:
    """Approve a proposed release. Failed or uncomputable gates need a written reason, which is recorded."""
    if release.status != Release.Status.PROPOSED:
        raise WorkbenchError(
            f"{release} is {release.get_status_display().lower()}; only proposed releases are approved."
        )
    gates = release_gates_refresh(release=release, user=user)
    blocking = gates_blocking(gates)
    reason = reason.strip()
    if blocking and not reason:
        names = ", ".join(f"{g['name']} ({g['status']})" for g in blocking)
        raise WorkbenchError(f"Gates not passed: {names}. Approving over them needs a written reason.")
    updated = Release.objects.filter(pk=release.pk, status=Release.Status.PROPOSED).update(
        status=Release.Status.APPROVED,
        approved_by=user,
        approved_at=timezone.now(),
        override_reason=reason if blocking else "",
    )
    if not updated:
        raise WorkbenchError(f"{release} was changed by someone else meanwhile; reload the page.")
    action = "approved over failed gates" if blocking else "approved"
    audit(project=release.project, action=action, user=user, release=release, reason=reason, blocking=blocking)
    keep_warm_refresh(release.project)
    release.refresh_from_db()
    return release


def release_reject(*, release: Release, user: Any, reason: str = "") -> Release:
    if release.status not in (Release.Status.PROPOSED, Release.Status.APPROVED):
        raise WorkbenchError(f"{release} is {release.get_status_display().lower()}; it cannot be rejected.")
    Release.objects.filter(pk=release.pk).update(status=Release.Status.REJECTED)
    audit(project=release.project, action="rejected", user=user, release=release, reason=reason)
    release.refresh_from_db()
    return release


def keep_warm_refresh(project: Project) -> None:
    """Web processes keep the rollback target and the newest approved candidates loaded, so switching to any of
    them (activation, rollback, canary) never makes a request wait for a model."""
    target = rollback_target(project)
    candidates = Release.objects.filter(project=project, status=Release.Status.APPROVED).order_by("-approved_at")[:2]
    warm = [r.configuration for r in [*([target] if target else []), *candidates]]
    serving_keep_warm_set(project=project, configurations=warm)


def release_check_artifacts(release: Release) -> None:
    """Refuse a release whose index files are gone or whose models changed on disk since they were registered."""
    configuration = release.configuration
    index = configuration.index
    if not Path(index.path, "manifest.json").is_file():
        raise WorkbenchError(f"The index files of {index} are gone ({index.path}); rebuild the index.")
    for model in filter(None, [index.encoder, configuration.reranker]):
        if not model.fingerprint:
            continue
        try:
            now = model_fingerprint(model.path)
        except RetrievalError as exc:
            raise WorkbenchError(f"{model.name} cannot be read: {exc}") from None
        if now != model.fingerprint:
            raise WorkbenchError(f"{model.name} changed on disk since it was registered (fingerprint differs).")


def release_activate(
    *, release: Release, user: Any, expected_active: int | None, action: str = "activated", reason: str = ""
) -> Release:
    """Make a release what the project serves, at once. ``expected_active`` is the id of the release the caller saw
    active (None: none); a mismatch means someone else switched first, and nothing changes."""
    if not release.was_approved or release.status not in (Release.Status.APPROVED, Release.Status.RETIRED):
        raise WorkbenchError(f"{release} is {release.get_status_display().lower()}; only approved releases go live.")
    release_check_artifacts(release)
    configuration_warm(release.configuration)  # loaded before the switch: the old one serves while this loads
    project = release.project
    try:
        with transaction.atomic():
            Project.objects.select_for_update().filter(pk=project.pk).first()
            current = Release.objects.filter(project=project, status=Release.Status.ACTIVE).first()
            if (current.pk if current else None) != expected_active:
                who = f"{current} is active now" if current else "no release is active now"
                raise WorkbenchError(f"Someone switched releases meanwhile ({who}); nothing was changed. Reload.")
            if current is not None:
                Release.objects.filter(pk=current.pk).update(status=Release.Status.RETIRED)
            Release.objects.filter(pk=release.pk).update(status=Release.Status.ACTIVE, activated_at=timezone.now())
            serving_set(
                project=project, configuration=release.configuration, user=user, source="release",
                note=f"release {release.number}",
            )  # fmt: skip
            audit(
                project=project, action=action, user=user, release=release, reason=reason,
                previous=current.pk if current else None,
            )  # fmt: skip
    except IntegrityError:  # the partial unique index: another activation committed first
        raise WorkbenchError("Another release was activated at the same moment; nothing was changed. Reload.") from None
    keep_warm_refresh(project)
    release.refresh_from_db()
    return release


def rollback_target(project: Project) -> Release | None:
    """The release that was active before the current one (the newest retired one)."""
    return (
        Release.objects.filter(project=project, status=Release.Status.RETIRED, activated_at__isnull=False)
        .order_by("-activated_at")
        .first()
    )


def release_rollback(*, project: Project, user: Any, to: Release | None = None, reason: str = "") -> Release:
    """Serve an earlier approved release again, at once (default: the one active before the current)."""
    target = to or rollback_target(project)
    if target is None:
        raise WorkbenchError("There is no earlier release to roll back to.")
    current = Release.objects.filter(project=project, status=Release.Status.ACTIVE).first()
    return release_activate(
        release=target, user=user, expected_active=current.pk if current else None, action="rolled back",
        reason=reason,
    )  # fmt: skip


def release_traffic_set(*, release: Release, user: Any, canary_share: int = 0, shadow: bool = False) -> None:
    """Send a sticky share of API callers to a candidate (canary) and/or search it beside the active release on live
    queries without answering with it (shadow). 0 % and no shadow stop both."""
    if not 0 <= canary_share <= 100:
        raise WorkbenchError(f"The canary share must be between 0 and 100 % (got {canary_share}).")
    project = release.project
    active = Release.objects.filter(project=project, status=Release.Status.ACTIVE).first()
    if active is None:
        raise WorkbenchError("Canary and shadow compare a candidate with the active release: activate one first.")
    if release.pk == active.pk:
        raise WorkbenchError(f"{release} is the active release; pick a candidate.")
    if release.status not in (Release.Status.PROPOSED, Release.Status.APPROVED):
        raise WorkbenchError(f"{release} is {release.get_status_display().lower()}; it cannot take traffic.")
    if canary_share and not release.was_approved:
        raise WorkbenchError("Only an approved release may answer users (canary); a proposed one can shadow.")
    release_check_artifacts(release)
    serving_set(
        project=project, configuration=active.configuration, user=user, source="release",
        note=f"release {active.number}", canary=release.configuration if canary_share else None,
        canary_share=canary_share, shadow=release.configuration if shadow else None,
    )  # fmt: skip
    audit(project=project, action="traffic set", user=user, release=release, canary_share=canary_share, shadow=shadow)


def gate_policy_save(*, policy: Any, user: Any) -> None:
    """Save the project's gate policy, audited."""
    policy.updated_by = user if getattr(user, "is_authenticated", False) else None
    policy.save()
    audit(
        project=policy.project, action="gate policy changed", user=user,
        recall_at_5_min=policy.recall_at_5_min, mrr_min=policy.mrr_min, hallucination_max=policy.hallucination_max,
        p95_latency_ms_max=policy.p95_latency_ms_max, noninferiority_margin=policy.noninferiority_margin,
    )  # fmt: skip


def release_auto_rollback_set(*, release: Release, user: Any, enabled: bool) -> None:
    """Let the monitor roll this release back by itself (p95 over budget, a golden-set drop), audited."""
    Release.objects.filter(pk=release.pk).update(auto_rollback=enabled)
    audit(project=release.project, action="automatic rollback set", user=user, release=release, enabled=enabled)

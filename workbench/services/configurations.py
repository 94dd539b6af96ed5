"""Search configurations (named ways to search) and what each project serves.

A configuration is checked once, here, whoever asks for it: the search page, the API, an evaluation, and next the
pooling of judging campaigns and hard-negative mining. What a project serves is one ``ServingRecord`` row, set by
an ML lead (and, later, by release activation); searches without an explicit choice use it, never "the newest
index".
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from workbench.errors import WorkbenchError
from workbench.models import IndexVersion, ModelVersion, Project, SearchConfiguration, ServingRecord
from workbench.retrieval.errors import RetrievalError
from workbench.retrieval.search import DEFAULT_FUSION_DEPTH, SearchSpec
from workbench.services.engines import configuration_warm, pin_served


def rerankers_offered(project: Project) -> Any:
    """Cross-encoders users may pick: never one with an untrained head."""
    return ModelVersion.objects.filter(project=project, kind=ModelVersion.Kind.CROSS_ENCODER, usable_for_search=True)


def search_configuration_draft(
    *,
    project: Project,
    index: IndexVersion,
    mode: str = "hybrid",
    alpha: float = 0.5,
    fusion_depth: int = DEFAULT_FUSION_DEPTH,
    reranker: ModelVersion | None = None,
    rerank_top_n: int = 50,
    rerank_adaptive: bool = False,
    rerank_min_n: int = 10,
    rerank_margin: float = 0.5,
    rerank_weight: float = 1.0,
    name: str = "",
) -> SearchConfiguration:
    """A checked, unsaved configuration (an ad-hoc search, or one an evaluation will save)."""
    if index.project_id != project.pk:
        raise WorkbenchError("That index belongs to another project.")
    if reranker is not None and not rerankers_offered(project).filter(pk=reranker.pk).exists():
        raise WorkbenchError(f"{reranker.name} is not a trained reranker of this project.")
    try:
        spec = SearchSpec(
            mode=mode,
            alpha=alpha,
            fusion_depth=fusion_depth,
            rerank_top_n=rerank_top_n,
            rerank_adaptive=rerank_adaptive,
            rerank_min_n=rerank_min_n,
            rerank_margin=rerank_margin,
            rerank_weight=rerank_weight,
        ).check()
    except RetrievalError as exc:
        raise WorkbenchError(str(exc)) from None
    spec = spec.normalised(reranked=reranker is not None)
    return SearchConfiguration(
        project=project,
        name=name.strip()[:200],
        index=index,
        mode=spec.mode,
        alpha=spec.alpha,
        fusion_depth=spec.fusion_depth,
        reranker=reranker,
        rerank_top_n=spec.rerank_top_n,
        rerank_adaptive=spec.rerank_adaptive,
        rerank_min_n=spec.rerank_min_n,
        rerank_margin=spec.rerank_margin,
        rerank_weight=spec.rerank_weight,
    )


def _unique_name(project: Project, wanted: str) -> str:
    base = (wanted.strip() or "configuration")[:190]
    name, n = base, 2
    while SearchConfiguration.objects.filter(project=project, name=name).exists():
        name, n = f"{base} ({n})", n + 1
    return name


def search_configuration_ensure(*, configuration: SearchConfiguration, user: Any) -> SearchConfiguration:
    """The saved configuration that ranks like this draft: an existing one, or this draft saved under a free name."""
    if configuration.pk:
        return configuration
    key = configuration.key()
    same = SearchConfiguration.objects.filter(
        project=configuration.project, index=configuration.index, mode=configuration.mode
    ).select_related("index__corpus", "index__encoder", "reranker")
    for existing in same:
        if existing.key() == key:
            return existing
    configuration.name = _unique_name(configuration.project, configuration.name or configuration.describe())
    configuration.created_by = user if getattr(user, "is_authenticated", False) else None
    configuration.save()
    return configuration


def search_configuration_create(*, configuration: SearchConfiguration, user: Any) -> SearchConfiguration:
    """Save a draft under the name the user gave it (names are unique per project)."""
    if not configuration.name:
        raise WorkbenchError("Give the configuration a name.")
    configuration.created_by = user if getattr(user, "is_authenticated", False) else None
    try:
        with transaction.atomic():
            configuration.save()
    except IntegrityError:
        raise WorkbenchError(
            f"A configuration named {configuration.name!r} already exists; choose another name."
        ) from None
    return configuration


def search_configuration_delete(*, configuration: SearchConfiguration) -> None:
    """Delete a configuration nothing depends on (what is served, an evaluation's numbers)."""
    try:
        with transaction.atomic():
            configuration.delete()
    except ProtectedError as exc:
        users = sorted({str(o) for o in exc.protected_objects})[:3]
        raise WorkbenchError(
            f"{configuration.name} cannot be deleted: it is used by {', '.join(users)}"
            f"{' and more' if len(exc.protected_objects) > 3 else ''}."
        ) from None


def served_configuration(project: Project) -> SearchConfiguration | None:
    related = [
        f"{arm}__{rel}"
        for arm in ("configuration", "canary_configuration", "shadow_configuration")
        for rel in ("index__encoder", "index__corpus", "reranker")
    ]
    record = ServingRecord.objects.filter(project=project).select_related(*related).first()
    return record.configuration if record else None


def serving_set(
    *,
    project: Project,
    configuration: SearchConfiguration,
    user: Any,
    source: str = "manual",
    note: str = "",
    canary: SearchConfiguration | None = None,
    canary_share: int = 0,
    shadow: SearchConfiguration | None = None,
) -> ServingRecord:
    """Make a configuration what the project serves, optionally with a canary (a sticky share of API callers) and a
    shadow (searched beside it, logged only). Each is loaded and queried once first, in this process, so one whose
    files are gone or whose encoder changed is refused and what served before keeps serving."""
    arms = [configuration, *(c for c in (canary, shadow) if c is not None)]
    for arm in arms:
        if arm.project_id != project.pk:
            raise WorkbenchError("That configuration belongs to another project.")
    if not 0 <= canary_share <= 100:
        raise WorkbenchError(f"The canary share must be between 0 and 100 % (got {canary_share}).")
    if canary is None and canary_share:
        raise WorkbenchError("A canary share needs a canary configuration.")
    if configuration.index.is_stale:
        note = note or "index built from an older corpus version"
    for arm in arms:
        configuration_warm(arm)
    with transaction.atomic():
        # Lock the project row: two leads switching at once are serialised, the later one wins, both see the result.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        record, _ = ServingRecord.objects.update_or_create(
            project=project,
            defaults={
                "configuration": configuration,
                "canary_configuration": canary if canary_share else None,
                "canary_share": canary_share if canary is not None else 0,
                "shadow_configuration": shadow,
                "source": source,
                "note": note[:300],
                "set_by": user if getattr(user, "is_authenticated", False) else None,
                "set_at": timezone.now(),
            },
        )
    pin_served(arms)
    return record


def caller_in_canary(project: Project, caller: str, share: int) -> bool:
    """Sticky per caller: the same caller (user or token) always lands in the same arm for a given share."""
    if share <= 0 or not caller:
        return False
    bucket = int(hashlib.sha256(f"{project.pk}:{caller}".encode()).hexdigest()[:8], 16) % 100
    return bucket < share


def served_arm(
    project: Project, caller: str = ""
) -> tuple[SearchConfiguration | None, str, SearchConfiguration | None]:
    """(configuration that answers this caller, its arm, shadow configuration) for a request that names none.

    The arm is "" when nothing else is configured, else "active" or "canary"."""
    record = (
        ServingRecord.objects.filter(project=project)
        .select_related(
            "configuration__index__encoder",
            "configuration__index__corpus",
            "configuration__reranker",
            "canary_configuration__index__encoder",
            "canary_configuration__index__corpus",
            "canary_configuration__reranker",
            "shadow_configuration__index__encoder",
            "shadow_configuration__reranker",
        )
        .first()
    )
    if record is None:
        return None, "", None
    split = record.canary_configuration_id is not None or record.shadow_configuration_id is not None
    if record.canary_configuration_id and caller_in_canary(project, caller, record.canary_share):
        return record.canary_configuration, "canary", record.shadow_configuration
    return record.configuration, "active" if split else "", record.shadow_configuration


def serving_keep_warm_set(*, project: Project, configurations: list[SearchConfiguration]) -> None:
    """Name the configurations every web process keeps loaded besides what is served (e.g. a rollback target)."""
    ids = sorted({c.pk for c in configurations if c.project_id == project.pk})
    ServingRecord.objects.filter(project=project).update(keep_warm=ids)


def warm_set() -> list[SearchConfiguration]:
    """Every configuration some project serves, canaries, shadows or keeps warm."""
    ids: set[int] = set()
    for record in ServingRecord.objects.all():
        ids.update(
            i for i in (record.configuration_id, record.canary_configuration_id, record.shadow_configuration_id) if i
        )
        ids.update(int(i) for i in record.keep_warm or [])
    return list(
        SearchConfiguration.objects.filter(pk__in=ids).select_related("index__encoder", "index__corpus", "reranker")
    )


def serving_warm_all() -> list[str]:
    """Warm (and pin) every configuration of ``warm_set`` in this process; failures are logged, not raised: a
    project whose files are gone must not stop the others from warming. Returns what was warmed."""
    import logging

    log = logging.getLogger(__name__)
    warmed, ok = [], []
    try:
        for configuration in warm_set():
            try:
                configuration_warm(configuration)
            except WorkbenchError as exc:
                log.warning("could not warm %s: %s", configuration, exc)
            else:
                warmed.append(f"{configuration.project.slug}: {configuration.name}")
                ok.append(configuration)
        pin_served(ok)
    except Exception:  # before migrations, or the database is down: serving will load lazily
        log.warning("warming the served configurations failed", exc_info=True)
    return warmed

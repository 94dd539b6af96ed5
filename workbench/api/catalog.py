"""What a project can search with: ``/api/p/<slug>/indexes`` and ``/models``."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from workbench.api.auth import project_auth, project_of
from workbench.api.schemas import ErrorOut, IndexListOut, ModelListOut
from workbench.models import IndexVersion, ModelVersion
from workbench.roles import Capability

router = Router(tags=["catalog"])

ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut}


@router.get(
    "/p/{slug:slug}/indexes",
    response={200: IndexListOut, **ERRORS},
    auth=project_auth(Capability.VIEW),
    url_name="indexes",
    operation_id="indexes_list",
    summary="Index versions of the project",
)
def indexes(request: HttpRequest, slug: str) -> dict:
    rows = IndexVersion.objects.filter(project=project_of(request)).select_related("corpus", "encoder")
    return {
        "indexes": [
            {
                "id": i.pk,
                "name": str(i),
                "corpus": i.corpus.name,
                "corpus_version": i.corpus_version,
                "stale": i.is_stale,
                "encoder": i.encoder.name,
                "index_type": i.index_type,
                "params": i.params,
                "passages": i.passage_count,
                "build_seconds": i.build_seconds,
                "created_at": i.created_at,
            }
            for i in rows
        ]
    }


@router.get(
    "/p/{slug:slug}/models",
    response={200: ModelListOut, **ERRORS},
    auth=project_auth(Capability.VIEW),
    url_name="models",
    operation_id="models_list",
    summary="Model versions of the project",
)
def models(request: HttpRequest, slug: str) -> dict:
    return {"models": list(ModelVersion.objects.filter(project=project_of(request)))}

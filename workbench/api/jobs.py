"""Background jobs of a project, as the Jobs page shows them: ``/api/p/<slug>/jobs`` and ``/jobs/<id>``."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router

from workbench import selectors
from workbench.api.auth import project_auth, project_of
from workbench.api.schemas import ErrorOut, JobDetailOut, JobListOut, JobsIn
from workbench.errors import NotFoundError
from workbench.models import Job
from workbench.roles import Capability

router = Router(tags=["jobs"])

ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut}


@router.get(
    "/p/{slug:slug}/jobs",
    response={200: JobListOut, 400: ErrorOut, **ERRORS},
    auth=project_auth(Capability.VIEW),
    url_name="jobs",
    operation_id="jobs_list",
    summary="Recent jobs, newest first",
)
def jobs(request: HttpRequest, slug: str, params: Query[JobsIn]) -> dict:
    rows = selectors.jobs_for_project(project_of(request), status=params.status or "")
    if params.kind:
        rows = rows.filter(kind=params.kind)
    return {
        "count": rows.count(),
        "limit": params.limit,
        "offset": params.offset,
        "jobs": list(rows[params.offset : params.offset + params.limit]),
    }


@router.get(
    "/p/{slug:slug}/jobs/{int:pk}",
    response={200: JobDetailOut, **ERRORS},
    auth=project_auth(Capability.VIEW),
    url_name="job",
    operation_id="job_get",
    summary="One job: status, progress, message, result, timestamps",
)
def job(request: HttpRequest, slug: str, pk: int) -> Job:
    found = selectors.jobs_for_project(project_of(request)).filter(pk=pk).first()
    if found is None:
        raise NotFoundError(f"No job {pk} in this project.")
    return found

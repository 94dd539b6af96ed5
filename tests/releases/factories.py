"""A project with a real (tiny-encoder) index, two saved configurations and one finished evaluation of both."""

from __future__ import annotations

from typing import Any

from evaluation.services import eval_run_start
from tests.factories import make_indexed_project
from workbench.models import QueryTag
from workbench.services import configurations


def release_world(scifact_dir: Any, encoder_path: Any, capture: Any = None) -> dict[str, Any]:
    project, lead, _, _, index = make_indexed_project(scifact_dir, encoder_path, capture=capture)
    made = {}
    for name, mode in (("bm25", "bm25"), ("hybrid", "hybrid")):
        draft = configurations.search_configuration_draft(project=project, index=index, mode=mode, name=name)
        made[name] = configurations.search_configuration_create(configuration=draft, user=lead)
    run = eval_run_start(
        project=project, user=lead, configs=[made["bm25"], made["hybrid"]], tag=QueryTag.objects.get(
            project=project, name="test"), resamples=200, background=False,
    )  # fmt: skip
    return {"project": project, "lead": lead, "index": index, "run": run, **made}

"""Run an evaluation synchronously from the shell: the same service as the page, printed as a table."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from evaluation import exports, selectors, services
from evaluation.services import DEFAULT_DEPTH
from workbench.errors import WorkbenchError
from workbench.management.commands._base import ProjectCommand
from workbench.models import IndexVersion, QueryTag
from workbench.services.configurations import rerankers_offered, search_configuration_draft


def _ids(value: str, name: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise CommandError(f"{name} must be comma-separated ids (got {value!r})") from None


class Command(ProjectCommand):
    user_help = "Username recorded as who ran the evaluation"
    help = (
        "Evaluate retrieval configurations (every --index x every --mode) on a query set and print metrics with "
        "comparison verdicts against the first configuration. Example: manage.py evaluate --project scifact "
        "--tag test --index 1 --mode dense,hybrid --json out.json --csv out.csv"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--tag", default="", help="Query tag (e.g. test); default: all judged queries")
        parser.add_argument("--index", required=True, help="Index version id(s), comma-separated")
        parser.add_argument("--mode", default="dense", help="dense, bm25 and/or hybrid, comma-separated")
        parser.add_argument("--alpha", type=float, default=0.5, help="Dense weight in hybrid mode")
        parser.add_argument("--rerank", type=int, default=None, help="Reranker model id, applied to every config")
        parser.add_argument("--rerank-top-n", type=int, default=50, help="Passages the reranker rescores per query")
        parser.add_argument("--k", type=int, default=DEFAULT_DEPTH, help="Depth: documents per query")
        parser.add_argument("--baseline", type=int, default=1, help="1-based configuration to compare with")
        parser.add_argument("--resamples", type=int, default=10_000, help="Resamples of the paired randomization test")
        parser.add_argument("--seed", type=int, default=0, help="Random seed of the significance test")
        parser.add_argument("--name", default="", help="Name of the evaluation (default: query set and configs)")
        parser.add_argument("--json", type=Path, default=None, help="Write the full results as JSON here")
        parser.add_argument("--csv", type=Path, default=None, help="Write metrics and comparisons as CSV here")

    def handle(self, *args: Any, **options: Any) -> None:
        project = self.project(options)
        user = self.user(options)
        tag = None
        if options["tag"]:
            tag = QueryTag.objects.filter(project=project, name=options["tag"]).first()
            if tag is None:
                raise CommandError(f"No query tag {options['tag']!r} in project {project.slug}")
        indexes = []
        for pk in _ids(options["index"], "--index"):
            index = IndexVersion.objects.filter(project=project, pk=pk).select_related("corpus", "encoder").first()
            if index is None:
                raise CommandError(f"No index version {pk} in project {project.slug}")
            indexes.append(index)
        modes = [m.strip() for m in options["mode"].split(",") if m.strip()]
        reranker = None
        if options["rerank"] is not None:
            reranker = rerankers_offered(project).filter(pk=options["rerank"]).first()
            if reranker is None:
                raise CommandError(f"No trained reranker {options['rerank']} in project {project.slug}")
        try:
            specs = [
                search_configuration_draft(
                    project=project,
                    index=i,
                    mode=m,
                    alpha=options["alpha"],
                    reranker=reranker,
                    rerank_top_n=options["rerank_top_n"],
                )
                for i, m in product(indexes, modes)
            ]
        except WorkbenchError as exc:
            raise CommandError(str(exc)) from None
        last = [-1]

        def progress(fraction: float, message: str) -> None:
            step = int(fraction * 10)
            if step != last[0]:
                last[0] = step
                self.stderr.write(f"{fraction:4.0%} {message}")

        try:
            run = services.eval_run_start(
                project=project,
                user=user,
                configs=specs,
                tag=tag,
                depth=options["k"],
                baseline=options["baseline"],
                resamples=options["resamples"],
                seed=options["seed"],
                name=options["name"],
                background=False,
                progress=progress,
            )
        except WorkbenchError as exc:
            raise CommandError(str(exc)) from None
        configs = selectors.configs_of(run)
        self.stdout.write(f"Evaluation #{run.pk}: {run.name}")
        for note in run.notes:
            self.stdout.write(f"note: {note}")
        self.stdout.write(exports.results_table(run, configs))
        if options["json"]:
            options["json"].write_text(json.dumps(exports.report_json(run, configs), indent=1), encoding="utf-8")
            self.stdout.write(f"Wrote {options['json']}")
        if options["csv"]:
            options["csv"].write_text(exports.report_csv(run, configs), encoding="utf-8")
            self.stdout.write(f"Wrote {options['csv']}")
        self.stdout.write(f"Run files in {run.artifact_dir}")

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandParser

from workbench.management.commands._base import ProjectCommand
from workbench.services.exports import export_beir


class Command(ProjectCommand):
    user_help = None  # an export records nobody
    help = "Export a corpus with its project's queries and judgments as a BEIR folder."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("out", type=Path, help="Folder to write (created if missing)")
        parser.add_argument("--corpus", required=True, help="Name of the corpus to export")

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        project = self.project(options)
        corpus = self.corpus(project, options["corpus"])
        summary = export_beir(corpus=corpus, out_dir=options["out"])
        self.stdout.write(self.style.SUCCESS(f"Wrote {options['out']}: {summary}"))

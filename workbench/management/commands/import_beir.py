from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from workbench.errors import WorkbenchError
from workbench.management.commands._base import ProjectCommand
from workbench.management.progress import progress_bar
from workbench.services.imports import beir_import


class Command(ProjectCommand):
    help = "Import a BEIR folder (corpus.jsonl, queries.jsonl, qrels/*.tsv) into a corpus, in one transaction."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("folder", type=Path)
        parser.add_argument("--corpus", required=True, help="Corpus name (created if missing)")
        parser.add_argument("--chunk-size", type=int, default=224)
        parser.add_argument("--chunk-overlap", type=int, default=32)

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        project = self.project(options)
        try:
            with transaction.atomic():
                corpus = self.corpus(
                    project,
                    options["corpus"],
                    create=True,
                    chunk_size=options["chunk_size"],
                    chunk_overlap=options["chunk_overlap"],
                )
                with progress_bar("import") as report:
                    result = beir_import(
                        project=project,
                        corpus=corpus,
                        folder=options["folder"],
                        user=self.user(options),
                        progress=report,
                    )
        except WorkbenchError as exc:
            raise CommandError(f"{exc}\nNothing was imported.") from None
        self.stdout.write(self.style.SUCCESS(result["message"]))

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from workbench.errors import WorkbenchError
from workbench.management.commands._base import ProjectCommand
from workbench.management.progress import progress_bar
from workbench.services.imports import beir_import


class Command(ProjectCommand):
    help = (
        "Import a BEIR folder (corpus.jsonl, queries.jsonl, qrels/*.tsv) into a corpus, in one transaction. "
        "Example: manage.py import_beir ../shared/datasets/scifact --project scifact --create-project --corpus scifact"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        self.add_create_project_arguments(parser)
        parser.add_argument("folder", type=Path, help="BEIR folder with corpus.jsonl, queries.jsonl and qrels/*.tsv")
        parser.add_argument("--corpus", required=True, help="Corpus name (created if missing)")
        parser.add_argument(
            "--chunk-size", type=int, default=224, help="New corpus: tokens per passage (embedding tokenizer)"
        )
        parser.add_argument(
            "--chunk-overlap", type=int, default=32, help="New corpus: tokens shared by consecutive passages"
        )
        self.add_grade_map_arguments(parser)

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        grade_map = self.grade_map(options)
        try:
            with transaction.atomic():  # a failed import leaves no project, corpus or rows behind
                project = self.project(options)
                user = self.user(options)
                corpus = self.corpus(
                    project,
                    options["corpus"],
                    create=True,
                    user=user,
                    chunk_size=options["chunk_size"],
                    chunk_overlap=options["chunk_overlap"],
                )
                with progress_bar("import") as report:
                    result = beir_import(
                        project=project,
                        corpus=corpus,
                        folder=options["folder"],
                        user=user,
                        progress=report,
                        grade_map=grade_map,
                        clip=options["clip"],
                    )
        except WorkbenchError as exc:
            raise CommandError(f"{exc}\nNothing was imported.") from None
        self.stdout.write(self.style.SUCCESS(result["message"]))
        self.write_textless(result)

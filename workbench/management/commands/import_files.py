from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from workbench.errors import WorkbenchError
from workbench.management.commands._base import ProjectCommand
from workbench.management.progress import progress_bar
from workbench.services import imports


class Command(ProjectCommand):
    help = "Import corpus files, queries or qrels (kind: corpus | queries | qrels). Atomic: all or nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        self.add_create_project_arguments(parser)
        parser.add_argument("kind", choices=["corpus", "queries", "qrels"], help="What the files hold")
        parser.add_argument("files", nargs="+", type=Path, help="Files to import (all in one transaction)")
        parser.add_argument("--corpus", help="Corpus name (corpus: created if missing; qrels: required)")
        parser.add_argument("--tags", default="", help="queries: comma-separated tags")
        parser.add_argument("--held-out", action="store_true", help="queries: the tags mark a held-out set")
        parser.add_argument("--split", default=None, help="qrels: split name (default: file name)")
        self.add_grade_map_arguments(parser)

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        kind = options["kind"]
        if kind in {"corpus", "qrels"} and not options["corpus"]:
            raise CommandError(f"--corpus is required for a {kind} import")
        grade_map = self.grade_map(options)
        try:
            files = [imports.InputFile.checked(p) for p in options["files"]]
            with transaction.atomic(), progress_bar(f"import {kind}") as report:  # a failure leaves nothing behind
                project, user = self.project(options), self.user(options)
                if kind == "corpus":
                    corpus = self.corpus(project, options["corpus"], create=True, user=user)
                    result = imports.corpus_import(
                        corpus=corpus, files=files, user=user, progress=report, discard_unfilled_corpus=False
                    )
                elif kind == "queries":
                    tags = [t for t in options["tags"].split(",") if t.strip()]
                    result = imports.queries_import(
                        project=project,
                        files=files,
                        user=user,
                        tags=tags,
                        held_out=options["held_out"],
                        progress=report,
                    )
                else:
                    corpus = self.corpus(project, options["corpus"])
                    result = imports.qrels_import(
                        project=project,
                        corpus=corpus,
                        files=files,
                        user=user,
                        split=options["split"],
                        grade_map=grade_map,
                        clip=options["clip"],
                    )
        except WorkbenchError as exc:
            raise CommandError(f"{exc}\nNothing was imported.") from None
        self.stdout.write(self.style.SUCCESS(result["message"]))
        self.write_textless(result)

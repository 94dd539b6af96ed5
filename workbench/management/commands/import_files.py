from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError, CommandParser

from workbench.errors import WorkbenchError
from workbench.management.commands._base import ProjectCommand
from workbench.management.progress import progress_bar
from workbench.services import imports


class Command(ProjectCommand):
    help = "Import corpus files, queries or qrels (kind: corpus | queries | qrels). Atomic: all or nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("kind", choices=["corpus", "queries", "qrels"])
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--corpus", help="Corpus name (corpus: created if missing; qrels: required)")
        parser.add_argument("--tags", default="", help="queries: comma-separated tags")
        parser.add_argument("--held-out", action="store_true", help="queries: the tags mark a held-out set")
        parser.add_argument("--split", default=None, help="qrels: split name (default: file name)")

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        project, user, kind = self.project(options), self.user(options), options["kind"]
        try:
            files = [imports.InputFile.checked(p) for p in options["files"]]
            with progress_bar(f"import {kind}") as report:
                if kind == "corpus":
                    if not options["corpus"]:
                        raise CommandError("--corpus is required for a corpus import")
                    corpus = self.corpus(project, options["corpus"], create=True)
                    result = imports.corpus_import(corpus=corpus, files=files, user=user, progress=report)
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
                    if not options["corpus"]:
                        raise CommandError("--corpus is required for a qrels import")
                    corpus = self.corpus(project, options["corpus"])
                    result = imports.qrels_import(
                        project=project, corpus=corpus, files=files, user=user, split=options["split"]
                    )
        except WorkbenchError as exc:
            raise CommandError(f"{exc}\nNothing was imported.") from None
        self.stdout.write(self.style.SUCCESS(result["message"]))

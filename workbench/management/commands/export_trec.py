from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandParser

from workbench.management.commands._base import ProjectCommand
from workbench.services.exports import qrels_by_split, queries_tsv_text, trec_qrels_text


class Command(ProjectCommand):
    user_help = None  # an export records nobody
    help = (
        "Export a project's queries as TREC topics (id<TAB>text) and its judgments as TREC qrels, one file per split."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("out", type=Path, help="Folder to write (created if missing)")
        parser.add_argument("--corpus", required=True, help="Name of the corpus to export")

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        project = self.project(options)
        corpus = self.corpus(project, options["corpus"])
        out: Path = options["out"]
        out.mkdir(parents=True, exist_ok=True)
        (out / "topics.tsv").write_text(queries_tsv_text(project), encoding="utf-8")
        for split, rows in qrels_by_split(corpus).items():
            (out / f"{split}.qrels").write_text(trec_qrels_text(rows), encoding="utf-8")
        self.stdout.write(self.style.SUCCESS(f"Wrote {out}"))

"""Shared argument handling for the import/export commands."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.text import slugify

from workbench.errors import WorkbenchError
from workbench.models import Corpus, Project
from workbench.parsers import parse_grade_map
from workbench.services.imports import REPORT_IDS
from workbench.services.projects import corpus_create, project_create


class ProjectCommand(BaseCommand):
    # What --user records for this command; None: the command takes no --user.
    user_help: str | None = "Username recorded as the importer"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project slug (the p/<slug>/ part of its pages' address)")
        if self.user_help:
            parser.add_argument("--user", default=None, help=self.user_help)

    def add_create_project_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--create-project",
            action="store_true",
            help="Create the project if no project has this slug (with no members, or --owner as its admin); "
            "a failed import leaves no project behind",
        )
        parser.add_argument(
            "--project-name", default=None, help="With --create-project: the project's name (default: the slug)"
        )
        parser.add_argument(
            "--owner", default=None, help="With --create-project: username who becomes the new project's admin"
        )

    def add_grade_map_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grade-map",
            default="",
            metavar="FROM:TO,...",
            help="Map qrels grades outside the project's scale, e.g. --grade-map=-1:0,4:3 (write it with '=' when "
            "it starts with a minus sign); other grades outside the scale are refused",
        )
        parser.add_argument(
            "--clip", action="store_true", help="Clip qrels grades outside the project's scale (after --grade-map)"
        )

    def grade_map(self, options: dict) -> str:
        try:
            parse_grade_map(options.get("grade_map") or "")
        except WorkbenchError as exc:
            raise CommandError(str(exc)) from None
        return options.get("grade_map") or ""

    def project(self, options: dict) -> Project:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            if options.get("create_project"):
                return self._create_project(options)
            hint = " (add --create-project to create it)" if "create_project" in options else ""
            raise CommandError(f"No project with slug {options['project']!r}{hint}")
        return project

    def _create_project(self, options: dict) -> Project:
        slug = options["project"]
        if slugify(slug) != slug:
            raise CommandError(f"--project {slug!r} is not a slug: use lowercase letters, digits and hyphens")
        owner = None
        if options.get("owner"):
            owner = get_user_model().objects.filter(username=options["owner"]).first()
            if owner is None:
                raise CommandError(f"No user {options['owner']!r} (for --owner)")
        try:
            project = project_create(name=options.get("project_name") or slug, slug=slug, user=owner)
        except WorkbenchError as exc:
            raise CommandError(str(exc)) from None
        who = f"{owner.username} is its admin" if owner else "it has no members yet: add an admin in Django admin"
        self.stdout.write(f"Created project {project.name} ({project.slug}); {who}.")
        return project

    def user(self, options: dict):  # type: ignore[no-untyped-def]
        if not options.get("user"):
            return None
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}")
        return user

    def corpus(self, project: Project, name: str, *, create: bool = False, user=None, **defaults: int) -> Corpus:  # type: ignore[no-untyped-def]
        corpus = Corpus.objects.filter(project=project, name=name).first()
        if corpus is None:
            if not create:
                raise CommandError(f"No corpus {name!r} in project {project.slug}")
            corpus = corpus_create(project=project, name=name, user=user, **defaults)
        return corpus

    def write_textless(self, result: dict) -> None:
        """Every document without text, one per line, when the message named only the first ones."""
        if len(result.get("title_only_documents", [])) + len(result.get("documents_without_passage", [])) <= REPORT_IDS:
            return
        for key, what in (
            ("title_only_documents", "no text, indexed by its title"),
            ("documents_without_passage", "WARNING: no title and no text, no passage"),
        ):
            for doc_id in result.get(key, []):
                self.stdout.write(f"  {doc_id}: {what}")

"""Shared argument handling for the import/export commands."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workbench.models import Corpus, Project


class ProjectCommand(BaseCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project slug")
        parser.add_argument("--user", default=None, help="Username recorded as the importer")

    def project(self, options: dict) -> Project:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {options['project']!r}")
        return project

    def user(self, options: dict):  # type: ignore[no-untyped-def]
        if not options.get("user"):
            return None
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}")
        return user

    def corpus(self, project: Project, name: str, *, create: bool = False, **defaults: int) -> Corpus:
        corpus = Corpus.objects.filter(project=project, name=name).first()
        if corpus is None:
            if not create:
                raise CommandError(f"No corpus {name!r} in project {project.slug}")
            corpus = Corpus.objects.create(project=project, name=name, **defaults)
        return corpus

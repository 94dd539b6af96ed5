from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workbench.demo import demo_password, demo_project_ensure, demo_users_ensure
from workbench.errors import WorkbenchError
from workbench.management.progress import progress_bar


class Command(BaseCommand):
    help = "Create one demo user per role and the SciFact demo project (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--folder", type=Path, default=None, help="BEIR SciFact folder (default: SCIFACT_DIR)")

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        users = demo_users_ensure()
        try:
            with progress_bar("SciFact demo") as report:
                message = demo_project_ensure(folder=options["folder"], progress=report)
        except WorkbenchError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(message)
        logins = ", ".join(f"{u} ({r})" for u, r in users.items())
        self.stdout.write(f"Demo logins (password: {demo_password()}): {logins}")

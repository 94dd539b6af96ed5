"""`manage.py serve`: the production processes (what `make serve` runs), or with `--demo` the embedded demo's.

Production: refuses DEBUG, SQLite and the filesystem broker; runs `check --deploy` (warnings are printed), `migrate`
and `collectstatic`; then becomes the supervisor (workbench.supervise) of gunicorn, a Celery worker for queue
`default`, one for `cpu,gpu`, and celery beat. The demo: runserver instead of gunicorn, one process each, no checks.
"""

from __future__ import annotations

import os
import shlex
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from workbench.config import project_env


def _celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workbench", *args]


class Command(BaseCommand):
    help = "Run the web server, Celery workers (default; cpu,gpu) and beat under one supervisor; Ctrl-C stops all."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--demo", action="store_true", help="runserver and the embedded broker (make run)")
        parser.add_argument("--port", type=int, default=8000, help="runserver's port with --demo")
        parser.add_argument("--dry-run", action="store_true", help="check and print the commands; start nothing")

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        env = project_env(settings.BASE_DIR)
        level = "WARNING" if options["demo"] else env.str("LOG_LEVEL", "INFO")
        schedule = str(settings.VAR_DIR / "celerybeat-schedule")
        if options["demo"]:
            web = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{options['port']}"]
            default_n, cpu_n, grace = 1, 1, 10.0
        else:
            self._refuse_unless_production()
            web = [sys.executable, "-m", "gunicorn", "-c", str(settings.BASE_DIR / "workbench" / "gunicorn.conf.py")]
            default_n = env.int("WORKER_CONCURRENCY_DEFAULT", 2, min_value=1)
            cpu_n = env.int("WORKER_CONCURRENCY_CPU", 1, min_value=1)
            grace = env.int("GUNICORN_GRACEFUL_TIMEOUT", 30, min_value=1) + 5.0
        worker = ["worker", "--loglevel", level, "--concurrency"]
        children = {
            # The web processes load what each project serves when they start: no user waits for a cold model.
            "web": ["env", "WARM_SERVED_ON_START=true", *web],
            "worker-default": _celery(*worker, str(default_n), "-Q", "default", "-n", "default@%h"),
            "worker-cpu-gpu": _celery(*worker, str(cpu_n), "-Q", "cpu,gpu", "-n", "cpu-gpu@%h"),
            "beat": _celery("beat", "--loglevel", level, "--schedule", schedule),
        }
        specs = [f"{name}={shlex.join(argv)}" for name, argv in children.items()]
        if options["dry_run"]:
            self.stdout.write("\n".join(specs))
            return
        if not options["demo"]:
            call_command("migrate", interactive=False, verbosity=1)
            call_command("collectstatic", interactive=False, verbosity=1)
        connections.close_all()
        sys.stdout.flush()
        sys.stderr.flush()
        os.chdir(settings.BASE_DIR)
        supervise = [sys.executable, "-m", "workbench.supervise", "--grace", f"{grace:g}", *specs]
        os.execv(sys.executable, supervise)  # this process becomes the supervisor: Django is not kept loaded

    def _refuse_unless_production(self) -> None:
        problems = []
        if settings.DEBUG:
            problems.append("DEBUG is on: unset it (or DEBUG=false); `make run` is the demo with DEBUG")
        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
            problems.append(
                "DATABASE_URL must point at PostgreSQL, e.g. postgresql://user:password@host:5432/workbench"
            )
        if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
            problems.append("CELERY_BROKER_URL must point at Redis, e.g. redis://127.0.0.1:6379/0")
        if problems:
            raise CommandError("make serve runs the production server; " + "; ".join(problems) + ".")
        call_command("check", deploy=True)  # warnings are printed; only errors stop here

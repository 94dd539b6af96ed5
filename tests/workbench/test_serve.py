"""`manage.py serve`: what `make serve` (production) and `make run` (demo) start."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command


def test_production_refuses_sqlite_and_the_filesystem_broker(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_BROKER_URL = "filesystem://"
    with pytest.raises(CommandError) as info:
        call_command("serve", "--dry-run")
    message = str(info.value)
    assert "DATABASE_URL must point at PostgreSQL" in message
    assert "CELERY_BROKER_URL must point at Redis" in message


def test_production_refuses_debug(settings) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = True
    with pytest.raises(CommandError, match="DEBUG is on"):
        call_command("serve", "--dry-run")


def test_the_demo_starts_the_web_server_two_workers_and_beat(capsys, settings) -> None:  # type: ignore[no-untyped-def]
    call_command("serve", "--demo", "--dry-run", "--port", "8123")
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert list(lines) == ["web", "worker-default", "worker-cpu-gpu", "beat"]
    assert "runserver 127.0.0.1:8123" in lines["web"]
    assert "-Q default " in lines["worker-default"] and "-Q cpu,gpu " in lines["worker-cpu-gpu"]
    assert f"--schedule {settings.VAR_DIR / 'celerybeat-schedule'}" in lines["beat"]

"""Integration tests run against real PostgreSQL and Redis with a real Celery worker (`make test` sets the URLs).

When CI is set and a service is missing, the tests fail instead of skipping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"integration services missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def real_services(django_db_setup, django_db_blocker) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        _unavailable("DATABASE_URL does not point at PostgreSQL (run `make test`)")
    broker = settings.CELERY_BROKER_URL
    if not broker.startswith("redis://"):
        _unavailable("CELERY_BROKER_URL does not point at Redis (run `make test`)")
    import redis

    try:
        redis.Redis.from_url(broker, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        _unavailable(f"Redis at {broker} is not reachable: {exc}")
    with django_db_blocker.unblock():
        db = connection.settings_dict
    url = f"postgresql://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {"DATABASE_URL": url, "CELERY_BROKER_URL": broker}


def start_worker(services: dict[str, str], var: Path, queues: str) -> subprocess.Popen:
    """A real `celery worker` process on the test database (its own process group, so it can be killed whole)."""
    env = {
        **os.environ,
        **services,
        "VAR_DIR": str(var),
        "ARTIFACTS_DIR": str(var / "artifacts"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "JOB_HEARTBEAT_TIMEOUT_S": "8",
        "TORCH_THREADS": "1",
    }
    log = open(var / "worker.log", "w")  # noqa: SIM115 - the worker writes to it until it exits
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workbench", "worker", "-Q", queues, "--concurrency", "1",
         "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{queues}@%h"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    proc.log_path = var / "worker.log"  # type: ignore[attr-defined]
    deadline = time.time() + 60
    while time.time() < deadline:
        if "ready." in proc.log_path.read_text():  # type: ignore[attr-defined]
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    stop_worker(proc)
    pytest.fail(f"worker did not start: {(var / 'worker.log').read_text()[-3000:]}")


def stop_worker(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def celery_worker_process(real_services, tmp_path_factory) -> Iterator[subprocess.Popen]:  # type: ignore[no-untyped-def]
    """The session's worker, consuming the default and cpu queues."""
    var = tmp_path_factory.mktemp("worker-var")
    proc = start_worker(real_services, var, "default,cpu")
    proc.var = var  # type: ignore[attr-defined]
    yield proc
    stop_worker(proc)


def wait_for_job(job_id: int, *, timeout: float = 120, worker: subprocess.Popen | None = None):  # type: ignore[no-untyped-def]
    from workbench.models import Job

    deadline = time.time() + timeout
    while time.time() < deadline:
        job = Job.objects.get(pk=job_id)
        if not job.is_active:
            return job
        time.sleep(0.3)
    log = worker.log_path.read_text()[-3000:] if worker is not None else ""  # type: ignore[attr-defined]
    raise AssertionError(f"job {job_id} still {job.status} after {timeout}s; worker log:\n{log}")

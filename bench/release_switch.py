"""Benchmark: API latency while a release is activated and rolled back under steady load (loopback HTTP, bounded).

Sets up (cached in bench/.cache/release/, PostgreSQL database BENCH_RELEASE_DB) a project with a 1,500-document
SciFact subset, two index versions of the base MiniLM (Flat and HNSW), two saved configurations (dense on Flat, hybrid
on HNSW), an evaluation of both on the test queries, and two approved releases. Starts the production server
(gunicorn, 2 workers × 4 threads, DEBUG off, web processes warming what is served and kept warm), drives CLIENTS
threads of `GET /api/p/<slug>/search` with the SciFact test queries for PHASE_S seconds, activates release B, waits
PHASE_S, rolls back to A, waits PHASE_S. Every answer is checked: status 200, and its configuration and index belong
together (no request answered by a half-switched configuration). Writes bench/results/release_switch.json.
Run: .venv/bin/python bench/release_switch.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "bench" / ".cache" / "release"
CACHE.mkdir(parents=True, exist_ok=True)
DB = os.environ.get("BENCH_RELEASE_DB", "postgresql://postgres@127.0.0.1:5432/wb_bench_release")
BROKER = os.environ.get("BENCH_RELEASE_BROKER", "redis://127.0.0.1:6379/12")
ENV = {
    "VAR_DIR": str(CACHE),
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "CELERY_TASK_ALWAYS_EAGER": "true",
    "DEBUG": "false",
    "SECRET_KEY": "bench-only-" + "x" * 50,
    "SECURE_SSL_REDIRECT": "false",
    "SESSION_COOKIE_SECURE": "false",
    "CSRF_COOKIE_SECURE": "false",
    "DATABASE_URL": DB,
    "CELERY_BROKER_URL": BROKER,
    "ENV_FILE": "",
}
os.environ.update(ENV)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
PHASE_S = float(os.environ.get("BENCH_PHASE_S", "20"))
N_DOCS = 1500


def _ensure_database() -> None:
    import psycopg

    name = DB.rsplit("/", 1)[1]
    admin = DB.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            conn.execute(f'create database "{name}"')


_ensure_database()
import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from bench._server import free_port, wait_listening  # noqa: E402
from evaluation.services import eval_run_start  # noqa: E402
from releases.models import Release  # noqa: E402
from releases.services import lifecycle  # noqa: E402
from workbench.demo import demo_users_ensure  # noqa: E402
from workbench.models import Corpus, IndexVersion, Project, QueryTag, Role  # noqa: E402
from workbench.services import configurations, indexes, projects  # noqa: E402
from workbench.services.imports import beir_import  # noqa: E402


def _subset(dest: Path) -> Path:
    """The test queries, their judged documents and other documents up to N_DOCS, in BEIR form."""
    src = Path(settings.SCIFACT_DIR)
    rows = [ln.split("\t") for ln in (src / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    judged = {d for _, d, _ in rows}
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "qrels").mkdir(exist_ok=True)
    kept = 0
    with open(src / "corpus.jsonl", encoding="utf-8") as fh, open(dest / "corpus.jsonl", "w", encoding="utf-8") as out:
        for line in fh:
            doc = json.loads(line)
            if doc["_id"] in judged or kept < N_DOCS - len(judged):
                kept += doc["_id"] not in judged
                out.write(line)
    qids = {q for q, _, _ in rows}
    queries = [ln for ln in (src / "queries.jsonl").read_text().splitlines() if json.loads(ln)["_id"] in qids]
    (dest / "queries.jsonl").write_text("\n".join(queries) + "\n")
    (dest / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join("\t".join(r) + "\n" for r in rows)
    )
    return dest


def setup() -> tuple[Project, dict[str, Release], str, list[str]]:
    call_command("migrate", verbosity=0)
    demo_users_ensure()
    project = Project.objects.filter(slug="release-bench").first()
    if project is None:
        project = Project.objects.create(name="Release bench", slug="release-bench")
        from django.contrib.auth import get_user_model

        lead = get_user_model().objects.get(username="mllead")
        project.memberships.create(user=lead, role=Role.ML_LEAD)
        corpus = Corpus.objects.create(project=project, name="scifact-1500")
        beir_import(project=project, corpus=corpus, folder=_subset(CACHE / "subset"), user=lead)
    lead = project.memberships.get(role=Role.ML_LEAD).user
    corpus = project.corpora.get()
    encoder = indexes.encoder_base_ensure(project=project)
    for kind in ("flat", "hnsw"):
        if not IndexVersion.objects.filter(project=project, index_type=kind).exists():
            print(f"building the {kind} index of {corpus.passages.count()} passages...", file=sys.stderr)
            with transaction.atomic():
                indexes.index_build_start(
                    project=project, corpus=corpus, encoder=encoder, index_type=kind, params={}, user=lead
                )
    made = {}
    for name, kind, mode in (("A dense flat", "flat", "dense"), ("B hybrid hnsw", "hnsw", "hybrid")):
        found = project.search_configurations.filter(name=name).first()
        if found is None:
            index = IndexVersion.objects.get(project=project, index_type=kind)
            draft = configurations.search_configuration_draft(project=project, index=index, mode=mode, name=name)
            found = configurations.search_configuration_create(configuration=draft, user=lead)
        made[name[0]] = found
    releases = {}
    if not Release.objects.filter(project=project).exists():
        run = eval_run_start(
            project=project, user=lead, configs=[made["A"], made["B"]], tag=QueryTag.objects.get(
                project=project, name="test"), resamples=500, background=False,
        )  # fmt: skip
        for key in ("A", "B"):
            r = lifecycle.release_propose(project=project, configuration=made[key], eval_runs=[run], user=lead)
            lifecycle.release_approve(release=r, user=lead, reason="benchmark")
    for key in ("A", "B"):
        releases[key] = Release.objects.get(project=project, configuration=made[key])
    active = Release.objects.filter(project=project, status="active").first()
    if active != releases["A"]:
        lifecycle.release_activate(release=releases["A"], user=lead, expected_active=active.pk if active else None)
    queries = list(QueryTag.objects.get(project=project, name="test").queries.values_list("text", flat=True))
    return project, releases, projects.api_token_create(user=lead, name="bench"), queries


def start_gunicorn(port: int) -> subprocess.Popen:
    env = {
        **os.environ, **ENV, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "4",
        "GUNICORN_ACCESS_LOG": "", "WARM_SERVED_ON_START": "true", "WARM_INTERVAL_S": "2", "LOG_LEVEL": "WARNING",
        "ALLOWED_HOSTS": "127.0.0.1",
    }  # fmt: skip
    with open(CACHE / "gunicorn.log", "w") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "workbench/gunicorn.conf.py"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    wait_listening(proc, port, what="gunicorn (see bench/.cache/release/gunicorn.log)")
    return proc


def share(rows: list, configuration_id: int) -> float:
    return round(sum(r[3] == configuration_id for r in rows) / max(1, len(rows)), 4)


def main() -> None:
    project, releases, token, queries = setup()
    port = free_port()
    server = start_gunicorn(port)
    url = f"http://127.0.0.1:{port}/api/p/{project.slug}/search?"
    index_of = {r.configuration_id: r.configuration.index_id for r in releases.values()}
    records: list[tuple[float, float, int, int | None, bool]] = []
    lock, stop = threading.Lock(), threading.Event()
    events: dict[str, float] = {}

    def client(n: int) -> None:
        i = n
        while not stop.is_set():
            q = queries[i % len(queries)]
            i += CLIENTS
            req = urllib.request.Request(
                url + urllib.parse.urlencode({"q": q, "k": 10}), headers={"Authorization": f"Token {token}"}
            )
            t0 = time.perf_counter()
            status, config, consistent = 0, None, False
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    status, body = resp.status, json.loads(resp.read())
                config = body["configuration"]["id"]
                consistent = index_of.get(config) == body["index"]["id"]
            except Exception:  # an error is what the benchmark counts
                pass
            ms = (time.perf_counter() - t0) * 1000
            with lock:
                records.append((time.perf_counter(), ms, status, config, consistent))

    time.sleep(8)  # let both web processes warm what is served and kept warm
    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    lead = project.memberships.get(role=Role.ML_LEAD).user
    try:
        time.sleep(PHASE_S)
        events["activate"] = time.perf_counter()
        lifecycle.release_activate(release=releases["B"], user=lead, expected_active=releases["A"].pk)
        events["activated"] = time.perf_counter()
        time.sleep(PHASE_S)
        events["rollback"] = time.perf_counter()
        lifecycle.release_rollback(project=project, user=lead, reason="benchmark")
        events["rolled_back"] = time.perf_counter()
        time.sleep(PHASE_S)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        server.terminate()
        server.wait(30)

    def window(lo: float, hi: float) -> dict:
        ms = np.array([r[1] for r in records if lo <= r[0] < hi])
        if not ms.size:
            return {"n": 0}
        return {"n": int(ms.size), "p50": round(float(np.percentile(ms, 50)), 1),
                "p95": round(float(np.percentile(ms, 95)), 1)}  # fmt: skip

    steady = window(start + 2, events["activate"])
    switch_s = 5.0
    during_activation = window(events["activate"], events["activated"] + switch_s)
    during_rollback = window(events["rollback"], events["rolled_back"] + switch_s)
    errors = sum(1 for r in records if r[2] != 200)
    inconsistent = sum(1 for r in records if r[2] == 200 and not r[4])
    after_b = [r for r in records if events["activated"] + 0.5 <= r[0] < events["rollback"]]
    after_a = [r for r in records if r[0] >= events["rolled_back"] + 0.5]
    result = {
        "machine": machine_info(),
        "setup": {
            "documents": N_DOCS,
            "clients": CLIENTS,
            "phase_s": PHASE_S,
            "gunicorn": "2 workers x 4 threads",
            "database": "PostgreSQL",
            "switch_window_s": switch_s,
        },
        "requests": len(records),
        "errors": errors,
        "half_switched_answers": inconsistent,
        "steady": steady,
        "during_activation": during_activation,
        "during_rollback": during_rollback,
        "activation_s": round(events["activated"] - events["activate"], 3),
        "rollback_s": round(events["rolled_back"] - events["rollback"], 3),
        "answered_by_B_after_activation": round(
            sum(r[3] == releases["B"].configuration_id for r in after_b) / max(1, len(after_b)), 4
        ),
        "answered_by_A_after_rollback": round(
            sum(r[3] == releases["A"].configuration_id for r in after_a) / max(1, len(after_a)), 4
        ),
    }
    worst = max(during_activation.get("p95", 0), during_rollback.get("p95", 0))
    result["switch_p95_over_steady_p95"] = round(worst / steady["p95"], 2) if steady.get("p95") else None
    result["targets_met"] = {
        "no_errors": errors == 0,
        "no_half_switched": inconsistent == 0,
        "switch_p95_within_2x": bool(
            result["switch_p95_over_steady_p95"] and result["switch_p95_over_steady_p95"] <= 2
        ),
    }
    out = ROOT / "bench" / "results" / "release_switch.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

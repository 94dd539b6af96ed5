"""Benchmark: end-to-end latency of the real HTTP search API on SciFact.

Sets up (once, cached in bench/.cache/api/) a workbench database with SciFact imported and a MiniLM index built by the
real index-build service, starts `manage.py runserver` (DEBUG off) on 127.0.0.1, and sends the 300 SciFact test
queries through `POST /api/p/<slug>/search` with a token, timing each request on the client:

1. embed query + dense search (Flat), k=10;
2. embed + hybrid (RRF) + rerank of the top 50 with a cross-encoder made from MiniLM with a fresh head (the timing is
   what counts here; such an untrained reranker is never offered to users);

and measures the cross-encoder directly (pairs/s and ms per query at several max lengths).
Prints JSON and writes bench/results/api.json. Run: .venv/bin/python bench/api.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "bench" / ".cache" / "api"
CACHE.mkdir(parents=True, exist_ok=True)
ENV = {
    "VAR_DIR": str(CACHE),
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "CELERY_TASK_ALWAYS_EAGER": "true",  # the index build runs in this process
    "DEBUG": "false",
    "SECRET_KEY": "bench-only",
    "SECURE_SSL_REDIRECT": "false",  # plain HTTP to runserver on 127.0.0.1: no TLS proxy in front
    "DATABASE_URL": f"sqlite:///{CACHE / 'db.sqlite3'}",
}
os.environ.update(ENV)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from bench._server import free_port, wait_listening  # noqa: E402
from workbench.demo import demo_project_ensure, demo_users_ensure  # noqa: E402
from workbench.models import IndexVersion, ModelVersion, Project  # noqa: E402
from workbench.retrieval.encoders import base_model_path  # noqa: E402
from workbench.retrieval.rerank import CrossEncoderReranker  # noqa: E402
from workbench.services import indexes, projects  # noqa: E402

N_QUERIES = int(os.environ.get("BENCH_API_QUERIES", "300"))
RERANK_TOP_N = 50


def setup() -> tuple[Project, IndexVersion, ModelVersion, str]:
    call_command("migrate", verbosity=0)
    demo_users_ensure()
    print(demo_project_ensure(folder=settings.SCIFACT_DIR), file=sys.stderr)
    project = Project.objects.get(slug="scifact")
    encoder = indexes.encoder_base_ensure(project=project)
    index = IndexVersion.objects.filter(project=project, encoder=encoder, index_type="flat").first()
    if index is None:
        print("building the MiniLM Flat index of SciFact (a few minutes on 2 cores)...", file=sys.stderr)
        with transaction.atomic():
            job = indexes.index_build_start(
                project=project, corpus=project.corpora.get(), encoder=encoder, index_type="flat", params={}, user=None
            )
        job.refresh_from_db()
        if job.status != "succeeded":
            sys.exit(f"index build failed: {job.message}")
        index = IndexVersion.objects.get(project=project, encoder=encoder, index_type="flat")
    ce_dir = CACHE / "cross-encoder-fresh-head"
    if not ce_dir.exists():
        from sentence_transformers import CrossEncoder

        CrossEncoder(str(base_model_path()), num_labels=1).save(str(ce_dir))
    reranker = ModelVersion.objects.filter(project=project, name="bench: MiniLM fresh head").first()
    if reranker is None:
        reranker = indexes.model_register(project=project, path=str(ce_dir), name="bench: MiniLM fresh head", user=None)
    user = project.memberships.get(role="ml_lead").user
    return project, index, reranker, projects.api_token_create(user=user, name="bench")


def start_server(port: int, extra_env: dict[str, str]) -> subprocess.Popen:
    env = {**os.environ, **ENV, **extra_env}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_listening(proc, port, timeout_s=60)
    return proc


def post(url: str, token: str, body: dict) -> tuple[float, dict]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
    )  # fmt: skip
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as resp:
        data = json.loads(resp.read())
    return (time.perf_counter() - t0) * 1000, data


def percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    p50, p95, p99 = (round(float(np.percentile(a, q)), 2) for q in (50, 95, 99))
    return {"p50": p50, "p95": p95, "p99": p99, "mean": round(float(a.mean()), 2), "n": len(values)}


def run_http(url: str, token: str, queries: list[str], body: dict) -> dict:
    for q in queries[:5]:  # warm-up: model loads, caches
        post(url, token, {**body, "q": q})
    client_ms, stages = [], {}
    for q in queries:
        ms, data = post(url, token, {**body, "q": q})
        client_ms.append(ms)
        for stage, value in data["timings_ms"].items():
            stages.setdefault(stage, []).append(value)
    return {
        "client_ms": percentiles(client_ms),
        "server_stage_ms": {s: percentiles(v) for s, v in stages.items() if max(v) > 0},
    }


def rerank_scaling(index: IndexVersion, reranker: ModelVersion, queries: list[str]) -> list[dict]:
    """Cross-encoder cost against max length, on real top-50 candidates."""
    from workbench.services.engines import engine_for

    engine = engine_for(index)
    candidates = [engine.texts_for(engine.search(q, mode="hybrid", k=RERANK_TOP_N).passage_ids) for q in queries]
    rows = []
    for precision in ("float32", "bfloat16"):
        for max_length in (64, 128, 256):
            rr = CrossEncoderReranker(
                reranker.path, max_length=max_length, batch_size=RERANK_TOP_N, precision=precision
            )
            reference = rr.score(queries[0], candidates[0])  # warm-up
            t0 = time.perf_counter()
            times = []
            for q, texts in zip(queries, candidates, strict=True):
                t = time.perf_counter()
                rr.score(q, texts)
                times.append((time.perf_counter() - t) * 1000)
            total = time.perf_counter() - t0
            pairs = sum(len(c) for c in candidates)
            rows.append(
                {
                    "precision": precision,
                    "max_length": max_length,
                    "pairs_per_s": round(pairs / total, 1),
                    "ms_per_query_top50_p50": round(statistics.median(times), 1),
                    "scores_first_query": [round(float(x), 4) for x in reference[:3]],
                }
            )
    return rows


def main() -> dict:
    project, index, reranker, token = setup()
    test_ids = [ln.split("\t")[0] for ln in (settings.SCIFACT_DIR / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    test_ids = list(dict.fromkeys(test_ids))[:N_QUERIES]
    queries = list(project.queries.filter(external_id__in=test_ids).values_list("text", flat=True))
    scaling = rerank_scaling(index, reranker, queries[:20])
    rerank_len = int(os.environ.get("RERANK_MAX_LENGTH", "0")) or settings.RERANK_MAX_LENGTH
    port = free_port()
    server = start_server(
        port, {"RERANK_MAX_LENGTH": str(rerank_len), "TORCH_THREADS": os.environ.get("TORCH_THREADS", "0")}
    )
    url = f"http://127.0.0.1:{port}/api/p/{project.slug}/search"
    try:
        dense = run_http(url, token, queries, {"mode": "dense", "k": 10, "index": index.pk})
        rerank = run_http(
            url, token, queries,
            {"mode": "hybrid", "k": 10, "index": index.pk, "rerank": reranker.pk, "rerank_top_n": RERANK_TOP_N},
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=20)
    figures = {
        "benchmark": "api",
        "queries": len(queries),
        "index": {"type": index.index_type, "passages": index.passage_count, "encoder": "all-MiniLM-L6-v2"},
        "server": "manage.py runserver (DEBUG off), SQLite, one process; client on the same machine",
        "dense_k10": dense,
        "hybrid_rerank_top50_k10": {**rerank, "rerank_max_length": rerank_len},
        "targets": {"dense_p95_ms": 50, "rerank_p95_ms": 1200},
        "meets_targets": {
            "dense": dense["client_ms"]["p95"] <= 50,
            "rerank": rerank["client_ms"]["p95"] <= 1200,
        },
        "cross_encoder_max_length_scaling": scaling,
        "machine": machine_info(),
    }
    out = ROOT / "bench" / "results" / "api.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()

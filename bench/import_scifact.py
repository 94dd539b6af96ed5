"""Benchmark: import and chunk the whole SciFact corpus (BEIR folder → documents, passages, queries, judgments).

Prints JSON and writes bench/results/import_scifact.json. Uses a throwaway SQLite database unless DATABASE_URL is set
(then it writes import_scifact-postgresql.json; give it an empty database).
Run: .venv/bin/python bench/import_scifact.py
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
_tmp = tempfile.mkdtemp(prefix="bench-import-")
os.environ.setdefault("VAR_DIR", _tmp)
os.environ.setdefault("DEBUG", "true")  # settings default to DEBUG off, which needs a SECRET_KEY; no server here
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from workbench.models import Corpus, Project  # noqa: E402
from workbench.services.imports import beir_import  # noqa: E402


def main() -> dict:
    call_command("migrate", verbosity=0)
    project = Project.objects.create(name=f"bench {time.time()}", slug=f"bench-{int(time.time() * 1000)}")
    corpus = Corpus.objects.create(project=project, name="scifact")
    phases: dict[str, float] = {}
    last = [time.perf_counter(), "start"]

    def progress(fraction: float, message: str) -> None:
        phase = message.split(" ")[0]
        if phase != last[1]:
            now = time.perf_counter()
            phases[last[1]] = phases.get(last[1], 0.0) + now - last[0]
            last[:] = [now, phase]

    t0 = time.perf_counter()
    result = beir_import(project=project, corpus=corpus, folder=settings.SCIFACT_DIR, user=None, progress=progress)
    seconds = time.perf_counter() - t0
    phases[last[1]] = phases.get(last[1], 0.0) + time.perf_counter() - last[0]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "benchmark": "import_scifact",
        "database": connection.vendor,
        "documents": result["documents"],
        "passages": result["passages"],
        "queries": result["queries"],
        "judgments": result["judgments"],
        "chunk_size_tokens": corpus.chunk_size,
        "chunk_overlap_tokens": corpus.chunk_overlap,
        "seconds_total": round(seconds, 2),
        "documents_per_s": round(result["documents"] / seconds, 1),
        "passages_per_s": round(result["passages"] / seconds, 1),
        "seconds_by_phase": {k: round(v, 2) for k, v in phases.items() if v > 0.005},
        "peak_rss_mb": round(peak_mb, 1),
        "machine": machine_info(),
    }
    suffix = "" if connection.vendor == "sqlite" else f"-{connection.vendor}"
    out = ROOT / "bench" / "results" / f"import_scifact{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()

"""Benchmark: concurrent annotators against the production server path (gunicorn, DEBUG off) on PostgreSQL.

Sets up a campaign on PostgreSQL (``DATABASE_URL``, default ``postgresql://postgres@127.0.0.1:5432/wb_labeling``): a
project with 1,000 SciFact documents and 100 queries, 20 annotators, overlap 2, enough pairs that nobody runs out.
Starts gunicorn (workbench/gunicorn.conf.py) on a free port with a random SECRET_KEY, then 20 client threads log in
and judge: each iteration is one htmx POST that saves a grade (with an evidence span and seconds) and returns the
next pair's pane, i.e. "save + next" in one round trip, exactly what the judging screen sends.

Two figures per request: *server time*, the app's own ``Server-Timing: app;dur=`` (every middleware, the view, SQL
and the template, measured inside Django), and the client round trip on 127.0.0.1 (server time + waiting for a
gunicorn thread and for a CPU + HTTP). Errors are non-200 answers or an error in the pane; at the end the judgments
stored in the database must equal the saves answered 200.

Scenarios, in this order:
1. one annotator alone, no think time (service time without queueing), 10 s;
2. **realistic** (the target's scenario): 20 annotators who read before they grade: a think time per judgment,
   ``BENCH_THINK_SECONDS`` (default 4 s) times a uniform jitter of ±``BENCH_THINK_JITTER`` (default 0.5), with
   each annotator's start staggered over one think time, ``BENCH_SECONDS`` (default 60 s);
3. saturation: the same 20 in a closed loop with zero think time, ``BENCH_SATURATION_SECONDS`` (default 30 s): what
   the machine does at full throughput; on 2 shared cores this measures queueing for CPU.
The machine's 1-minute load average is recorded before and after each.

Run: .venv/bin/python bench/labeling_load.py   (about 2.5 minutes with the defaults)
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VAR = Path(os.environ.get("BENCH_VAR", "/tmp/bench-labeling"))
VAR.mkdir(parents=True, exist_ok=True)
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/wb_labeling")
SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
SATURATION_SECONDS = float(os.environ.get("BENCH_SATURATION_SECONDS", "30"))
THINK = float(os.environ.get("BENCH_THINK_SECONDS", "4"))
JITTER = float(os.environ.get("BENCH_THINK_JITTER", "0.5"))
ANNOTATORS = int(os.environ.get("BENCH_ANNOTATORS", "20"))
WORKERS = os.environ.get("BENCH_GUNICORN_WORKERS", "2")
THREADS = os.environ.get("BENCH_GUNICORN_THREADS", "4")
PER_ANNOTATOR = 1500
OVERLAP = 2
PASSWORD = "bench-password-123"
SLUG = "bench-labeling"
SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact"
ENV = {
    "DATABASE_URL": DATABASE_URL,
    "VAR_DIR": str(VAR),
    "DJANGO_SETTINGS_MODULE": "workbench.settings",
    "ENV_FILE": "",
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "SECURE_SSL_REDIRECT": "false",  # plain HTTP on 127.0.0.1: no TLS proxy in front
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "CELERY_TASK_ALWAYS_EAGER": "true",
}
os.environ.update(ENV)

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from bench._machine import machine_info  # noqa: E402
from labeling.models import Assignment, Campaign, GuidelineVersion, PoolItem  # noqa: E402
from labeling.services.campaigns import guideline_hash, order_key  # noqa: E402
from workbench.models import Corpus, Document, Judgment, Membership, Project, Query, Role  # noqa: E402


def setup() -> tuple[Project, Campaign, list[str]]:
    call_command("migrate", verbosity=0)
    Project.objects.filter(slug=SLUG).delete()
    User = get_user_model()
    names = [f"bench-ann-{i:02d}" for i in range(ANNOTATORS)]
    User.objects.filter(username__in=names).delete()
    docs = []
    with open(SCIFACT / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            if d.get("text"):
                docs.append(d)
            if len(docs) == 1000:
                break
    queries = [json.loads(ln) for ln in (SCIFACT / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:100]]
    with transaction.atomic():
        project = Project.objects.create(name="Labeling load", slug=SLUG)
        corpus = Corpus.objects.create(project=project, name="scifact-1000")
        Document.objects.bulk_create(
            Document(corpus=corpus, external_id=d["_id"], title=d.get("title", ""), text=d["text"], content_hash="-")
            for d in docs
        )
        Query.objects.bulk_create(Query(project=project, external_id=q["_id"], text=q["text"]) for q in queries)
        users = [User.objects.create_user(username=n, password=PASSWORD) for n in names]
        Membership.objects.bulk_create(Membership(project=project, user=u, role=Role.ANNOTATOR) for u in users)
        campaign = Campaign.objects.create(project=project, corpus=corpus, name="load", overlap=OVERLAP, status="open")
        campaign.annotators.set(users)
        GuidelineVersion.objects.create(
            campaign=campaign, number=1, text="Judge.", content_hash=guideline_hash("Judge.")
        )
        doc_ids = list(Document.objects.filter(corpus=corpus).values_list("pk", flat=True))
        query_ids = list(Query.objects.filter(project=project).values_list("pk", flat=True))
        n_items = ANNOTATORS * PER_ANNOTATOR // OVERLAP
        pairs = [(q, d) for q in query_ids for d in doc_ids][:n_items]
        PoolItem.objects.bulk_create(PoolItem(campaign=campaign, query_id=q, document_id=d) for q, d in pairs)
        items = list(PoolItem.objects.filter(campaign=campaign).order_by("id").values_list("pk", flat=True))
        Assignment.objects.bulk_create(
            Assignment(
                item_id=item,
                campaign=campaign,
                annotator=users[(i * OVERLAP + j) % ANNOTATORS],
                order_key=order_key(campaign, users[(i * OVERLAP + j) % ANNOTATORS].pk, item, 0.0),
            )
            for i, item in enumerate(items)
            for j in range(OVERLAP)
        )
    with connection.cursor() as cursor:  # fresh statistics, as autovacuum would leave them on a live database
        cursor.execute("ANALYZE")
    return project, campaign, names


class Session:
    """One annotator's keep-alive HTTP connection with its cookies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}
        self.reconnects = 0
        self.server_timing = ""

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):  # type: ignore[no-untyped-def]
        h = {"Host": "127.0.0.1", "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), **(headers or {})}
        data = None
        if body is not None:
            data = urllib.parse.urlencode(body)
            h["Content-Type"] = "application/x-www-form-urlencoded"
            h["Referer"] = "http://127.0.0.1/"
        try:
            self.conn.request(method, path, body=data, headers=h)
            r = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed an idle keep-alive connection: reconnect once (a resent save is the double submit
            # the database makes harmless).
            self.reconnects += 1
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.conn.request(method, path, body=data, headers=h)
            r = self.conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        self.server_timing = r.getheader("Server-Timing") or ""
        return r.status, text

    def login(self, username: str) -> None:
        _, page = self.request("GET", "/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        status, _ = self.request(
            "POST", "/accounts/login/", {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token}
        )
        assert status == 302, f"login failed for {username}: {status}"


SUBMIT = re.compile(r'data-submit-url="([^"]+)"')
TIMING = re.compile(r'app;dur=([\d.]+), db;dur=([\d.]+);desc="(\d+) queries"')


def annotator(
    port: int, username: str, judge_path: str, deadline: dict, out: dict, start: threading.Barrier, think: float = 0.0
) -> None:
    """One annotator: log in, open the judging screen, then save + next until the deadline, thinking ``think``
    seconds (± the jitter) before each grade; the first think is a random part of one, so arrivals spread out."""
    s = Session(port)
    s.login(username)
    status, page = s.request("GET", judge_path)
    assert status == 200, status
    csrf = s.cookies["csrftoken"]
    url = SUBMIT.search(page).group(1)
    rng = random.Random(username)
    start.wait(timeout=300)
    if think:
        time.sleep(rng.uniform(0, think))
    times, server, db, queries, errors, sent_ok = [], [], [], [], 0, 0
    while time.time() < deadline["t"] and url:
        pause = think * rng.uniform(1 - JITTER, 1 + JITTER) if think else 0.0
        if pause:
            time.sleep(min(pause, max(0.0, deadline["t"] - time.time())))
            if time.time() >= deadline["t"]:
                break
        secs = pause or rng.uniform(2, 30)
        body = {"grade": str(rng.randint(0, 3)), "evidence": "[[0, 20]]", "seconds": f"{secs:.2f}"}
        t0 = time.perf_counter()
        status, pane = s.request("POST", url, body, {"HX-Request": "true", "X-CSRFToken": csrf})
        times.append((time.perf_counter() - t0) * 1000)
        if m := TIMING.search(s.server_timing):
            server.append(float(m.group(1)))
            db.append(float(m.group(2)))
            queries.append(int(m.group(3)))
        if status != 200 or 'role="alert"' in pane:
            errors += 1
        else:
            sent_ok += 1
        m = SUBMIT.search(pane)
        url = m.group(1) if m else None
    out[username] = {
        "times": times, "server": server, "db": db, "queries": queries, "errors": errors, "ok": sent_ok,
        "ran_out": url is None, "reconnects": s.reconnects,
    }  # fmt: skip


def _pcts(values: list[float]) -> dict:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    a = np.array(values)
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 1),
        "p95_ms": round(float(np.percentile(a, 95)), 1),
        "p99_ms": round(float(np.percentile(a, 99)), 1),
        "max_ms": round(float(a.max()), 1),
    }


def summarise(out: dict, elapsed: float, load: tuple[float, float]) -> dict:
    """One scenario's figures: server time (Server-Timing) and client round trip, errors, throughput."""
    rows = list(out.values())
    client = [t for r in rows for t in r["times"]]
    server = [t for r in rows for t in r.get("server", [])]
    queries = [q for r in rows for q in r.get("queries", [])]
    db = [t for r in rows for t in r.get("db", [])]
    return {
        "annotators": len(rows),
        "seconds": round(elapsed, 1),
        "requests": len(client),
        "throughput_rps": round(len(client) / elapsed, 1) if elapsed else None,
        "server_time": _pcts(server),
        "server_db_time_p50_ms": round(float(np.percentile(db, 50)), 2) if db else None,
        "sql_statements_per_request": sorted(set(queries)),
        "client_round_trip": _pcts(client),
        "errors": sum(r["errors"] for r in rows),
        "saves_answered_200": sum(r["ok"] for r in rows),
        "reconnects": sum(r["reconnects"] for r in rows),
        "crashed_clients": [r["crash"] for r in rows if "crash" in r],
        "anyone_ran_out_of_pairs": any(r["ran_out"] for r in rows),
        "load_average_1m_before_after": [round(load[0], 1), round(load[1], 1)],
    }


def crowd(port: int, names: list[str], judge_path: str, seconds: float, think: float) -> dict:
    """All annotators at once, released together by a barrier once every one has logged in."""
    out: dict = {}
    start = threading.Barrier(len(names) + 1)
    deadline_box = {"t": time.time() + 3600}

    def run(name: str) -> None:
        try:
            annotator(port, name, judge_path, deadline_box, out, start, think)
        except Exception as exc:  # report, never hang the others at the barrier
            start.abort()
            if not isinstance(exc, threading.BrokenBarrierError):
                out[name] = {"times": [], "errors": 1, "ok": 0, "ran_out": False, "reconnects": 0, "crash": repr(exc)}
            else:
                out.setdefault(name, {"times": [], "errors": 0, "ok": 0, "ran_out": False, "reconnects": 0})

    threads = [threading.Thread(target=run, args=(n,)) for n in names]
    for t in threads:
        t.start()
    try:
        start.wait(timeout=300)
    except threading.BrokenBarrierError:  # a client crashed before the start: its error is in ``out``
        deadline_box["t"] = 0
        for t in threads:
            t.join()
        return summarise(out, 0.0, (os.getloadavg()[0], os.getloadavg()[0]))
    load_before = os.getloadavg()[0]
    began = time.time()
    deadline_box["t"] = began + seconds
    for t in threads:
        t.join()
    return summarise(out, time.time() - began, (load_before, os.getloadavg()[0]))


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops gunicorn on a timeout too
    project, campaign, names = setup()
    env = {**os.environ, **ENV, "GUNICORN_BIND": "127.0.0.1:0", "GUNICORN_WORKERS": WORKERS,
           "GUNICORN_THREADS": THREADS, "GUNICORN_ACCESS_LOG": "/dev/null"}  # fmt: skip
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert collect.returncode == 0, collect.stderr[-2000:]
    log = VAR / "gunicorn.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "workbench/gunicorn.conf.py"],
            cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        port, wait_until = None, time.time() + 60
        while port is None and time.time() < wait_until and proc.poll() is None:
            m = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log.read_text())
            port = int(m.group(1)) if m else None
            time.sleep(0.2)
        assert port, log.read_text()[-2000:]
        judge_path = f"/p/{SLUG}/labeling/campaigns/{campaign.pk}/judge/"
        Session(port).request("GET", "/accounts/login/")  # warm a worker
        # One annotator alone first: the service time of a save + next without queueing behind 19 others.
        solo: dict = {}
        load0 = os.getloadavg()[0]
        t0 = time.time()
        annotator(port, names[0], judge_path, {"t": time.time() + 10}, solo, threading.Barrier(1))
        single = summarise(solo, time.time() - t0, (load0, os.getloadavg()[0]))
        realistic = crowd(port, names, judge_path, SECONDS, THINK)
        saturation = crowd(port, names, judge_path, SATURATION_SECONDS, 0.0) if SATURATION_SECONDS > 0 else None
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=40)  # graceful_timeout is 30 s
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    phases = [p for p in (single, realistic, saturation) if p]
    ok = sum(p["saves_answered_200"] for p in phases)
    stored = Judgment.objects.filter(project=project, source="annotator").count()
    linked = Assignment.objects.filter(item__campaign=campaign, judgment__isnull=False).count()
    errors = sum(p["errors"] for p in phases)
    p95 = realistic["server_time"]["p95_ms"]
    result = {
        "benchmark": "labeling_load",
        "what": "htmx POST save (grade + span + seconds) returning the next pair's pane, per annotator in a loop",
        "timing": "server_time: the app's Server-Timing app;dur (inside Django: middleware, view, SQL, template); "
        "client_round_trip: on 127.0.0.1 with the load generator on the same machine (adds waiting for a gunicorn "
        "thread, the GIL and a CPU, and HTTP)",
        "realistic": {"think_seconds": THINK, "think_jitter": JITTER, **realistic},
        "saturation_zero_think": saturation,
        "single_annotator": single,
        "errors": errors,
        "saves_answered_200": ok,
        "judgments_stored": stored,
        "assignments_linked": linked,
        "lost": ok - stored,
        "target": {"scenario": "realistic", "server_p95_ms": 50, "errors": 0, "lost": 0},
        "target_met": bool(p95 is not None and p95 <= 50 and errors == 0 and ok == stored),
        "flags": {
            "database": "postgresql",
            "gunicorn_workers": int(WORKERS),
            "gunicorn_threads": int(THREADS),
            "debug": False,
            "bench_seconds": SECONDS,
            "saturation_seconds": SATURATION_SECONDS,
        },
        "machine": machine_info(),
    }
    print(json.dumps(result, indent=2))
    (ROOT / "bench" / "results" / "labeling_load.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

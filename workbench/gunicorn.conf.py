"""gunicorn configuration: `gunicorn -c workbench/gunicorn.conf.py` (what `make serve` runs).

Every value comes from a GUNICORN_* variable (environment, then `.env`), validated like the Django settings. Threads
rather than many processes: each worker process caches its own models and indexes, so memory grows with workers.
"""

from __future__ import annotations

import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))  # gunicorn may be started from another directory

from workbench.config import project_env  # noqa: E402

env = project_env(BASE_DIR)

wsgi_app = "workbench.wsgi:application"
chdir = str(BASE_DIR)
bind = env.list("GUNICORN_BIND", ["127.0.0.1:8000"])
# On 2 cores: one process per core (the GIL lets one thread per process run Python at a time; more processes than
# cores only add memory, each caching its own models) and 4 threads each, so a request waiting on PostgreSQL leaves
# its core to another. The judging load benchmark (bench/labeling_load.py) runs with these.
workers = env.int("GUNICORN_WORKERS", 2, min_value=1)
threads = env.int("GUNICORN_THREADS", 4, min_value=1)
worker_class = "gthread"
# A search with reranking takes about a second; large imports are uploaded, then processed by a Celery worker.
timeout = env.int("GUNICORN_TIMEOUT", 60, min_value=1)
graceful_timeout = env.int("GUNICORN_GRACEFUL_TIMEOUT", 30, min_value=1)
keepalive = env.int("GUNICORN_KEEPALIVE", 5, min_value=1)
# Restart a worker after this many requests (0: never), with jitter so they do not all restart at once.
max_requests = env.int("GUNICORN_MAX_REQUESTS", 0, min_value=0)
max_requests_jitter = max_requests // 10
# Proxies whose X-Forwarded-* headers gunicorn trusts (comma-separated IPs, or * behind a private network).
forwarded_allow_ips = env.str("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = env.str("GUNICORN_ACCESS_LOG", "-")  # "-": stdout
errorlog = "-"
loglevel = env.str("LOG_LEVEL", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")).lower()
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'
proc_name = "workbench"
# gunicorn's control interface (gunicornc); beside the other runtime files, not one shared path in $HOME.
control_socket = str(env.path("VAR_DIR", BASE_DIR / "var", base=BASE_DIR) / "gunicorn.ctl")

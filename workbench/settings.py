"""Settings, driven by environment variables (every one is listed in .env.example).

Default: SQLite and a filesystem Celery broker, so `make run` needs no server. Production: DATABASE_URL (PostgreSQL)
and CELERY_BROKER_URL (Redis).
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from workbench.config import project_env

BASE_DIR = Path(__file__).resolve().parent.parent
# The environment, with `.env` (or ENV_FILE) beneath it: a variable set in the environment wins over the file.
env = project_env(BASE_DIR)

# Off unless asked for: `make run` (the demo) sets DEBUG=true; production never does.
DEBUG = env.bool("DEBUG", False)
_DEV_SECRET_KEY = "dev-only-insecure-key-change-me"
SECRET_KEY = env.str("SECRET_KEY")
if not DEBUG and SECRET_KEY in ("", _DEV_SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a long random value when DEBUG is off, e.g. "
        "SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))'); "
        "for local development set DEBUG=true instead (make run does)."
    )
SECRET_KEY = SECRET_KEY or _DEV_SECRET_KEY
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS")

# HTTPS behind a TLS-terminating proxy. Production defaults (DEBUG off) pass `manage.py check --deploy`; each can be
# overridden. The proxy must set X-Forwarded-Proto (and strip it from clients), or set SECURE_PROXY_SSL_HEADER= (empty).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_PROXY_SSL_HEADER = env.pair("SECURE_PROXY_SSL_HEADER", None if DEBUG else ("HTTP_X_FORWARDED_PROTO", "https"))
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, min_value=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", not DEBUG)

VAR_DIR = env.path("VAR_DIR", BASE_DIR / "var", base=BASE_DIR)
ARTIFACTS_DIR = env.path("ARTIFACTS_DIR", VAR_DIR / "artifacts", base=BASE_DIR)
UPLOAD_DIR = env.path("UPLOAD_DIR", VAR_DIR / "uploads", base=BASE_DIR)
SCIFACT_DIR = env.path("SCIFACT_DIR", (BASE_DIR / ".." / "shared" / "datasets" / "scifact").resolve(), base=BASE_DIR)
# Largest file an import accepts; larger files are refused before anything is read.
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", 500 * 1024 * 1024, min_value=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 1000
# A running job whose heartbeat is older than this is taken as lost (its worker died) and marked failed.
JOB_HEARTBEAT_TIMEOUT_S = env.int("JOB_HEARTBEAT_TIMEOUT_S", 120, min_value=1)
# Torch CPU threads for batch work (index builds, training); 0: all cores.
TORCH_THREADS = env.int("TORCH_THREADS", 0, min_value=0)
# Torch CPU threads for query-time encoding. One thread per query is faster under load: with two, every query's
# tiny matmuls wait at thread barriers whenever another process holds a core (median 450 ms vs 17 ms measured).
SEARCH_TORCH_THREADS = env.int("SEARCH_TORCH_THREADS", 1, min_value=0)
# Reranking scores a batch of pairs, which does use more cores (0: all cores).
RERANK_TORCH_THREADS = env.int("RERANK_TORCH_THREADS", 0, min_value=0)
# Tokens per (query, passage) pair a reranker reads: cross-encoder cost grows with it (see bench/results/api.json).
RERANK_MAX_LENGTH = env.int("RERANK_MAX_LENGTH", 256, min_value=1)
# p95 milliseconds the rerank stage may take per query (the seeds' SLA gives it 100-500 ms of a 1.2 s answer): a
# reranker's measured backend speed turns it into the largest depth it can rescore (workbench.retrieval.rerank_budget).
RERANK_BUDGET_MS = env.float("RERANK_BUDGET_MS", 500.0, min_value=1.0)
# Fidelity gates of CPU inference backends (int8, OpenVINO) against float32: below them a backend is refused.
# Index building needs every sample vector's cosine to float32 at least this high.
BACKEND_ENCODER_COSINE_MIN = env.float("BACKEND_ENCODER_COSINE_MIN", 0.999, min_value=0.0, max_value=1.0)
# Rerankers: largest allowed change of nDCG@10 on judged dev lists, and the lowest mean score Spearman.
BACKEND_RERANK_NDCG_DELTA_MAX = env.float("BACKEND_RERANK_NDCG_DELTA_MAX", 0.005, min_value=0.0, max_value=1.0)
BACKEND_RERANK_SPEARMAN_MIN = env.float("BACKEND_RERANK_SPEARMAN_MIN", 0.98, min_value=-1.0, max_value=1.0)
# Without judged dev lists: the share of float32's top 10 a backend must keep.
BACKEND_RERANK_TOP10_OVERLAP_MIN = env.float("BACKEND_RERANK_TOP10_OVERLAP_MIN", 0.95, min_value=0.0, max_value=1.0)
# Loaded indexes, encoders and rerankers kept per process (least recently used go first; what is served stays).
INDEX_CACHE_SIZE = env.int("INDEX_CACHE_SIZE", 4, min_value=1)
MODEL_CACHE_SIZE = env.int("MODEL_CACHE_SIZE", 8, min_value=1)
RERANKER_CACHE_SIZE = env.int("RERANKER_CACHE_SIZE", 4, min_value=1)
# Web processes load every served configuration at start (`make run` and `make serve` set it for the web process).
WARM_SERVED_ON_START = env.bool("WARM_SERVED_ON_START", False)
# ... and again at this interval, so what another process switched to is loaded here before a request needs it.
WARM_INTERVAL_S = env.int("WARM_INTERVAL_S", 15, min_value=1)
# Search log rows (the latency page) older than this are pruned daily by beat.
SEARCH_LOG_RETENTION_DAYS = env.int("SEARCH_LOG_RETENTION_DAYS", 30, min_value=1)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django_htmx",
    "workbench",
    "labeling",
    "training",
    "evaluation",
    "releases",
]

MIDDLEWARE = [
    # First, so its Server-Timing header covers every other middleware, the view and the template.
    "workbench.middleware.ServerTimingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from gunicorn (compressed, far-future cache headers on hashed names); no DEBUG needed.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "workbench.urls"
WSGI_APPLICATION = "workbench.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "workbench.context_processors.capabilities",
            ],
        },
    },
]

_sqlite_default = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
_database_url = env.url("DATABASE_URL", _sqlite_default, schemes=("sqlite", "postgres", "postgresql", "pgsql"))
DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write to the same file: WAL lets readers proceed during a write, IMMEDIATE
    # transactions take the write lock up front (no upgrade deadlocks), and the timeout waits for it.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "workbench:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.timezone("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# `collectstatic` writes here; whitenoise serves it. Hashed names (the manifest) get a far-future cache header.
STATIC_ROOT = env.path("STATIC_ROOT", VAR_DIR / "staticfiles", base=BASE_DIR)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "workbench.static_storage.StaticFilesStorage"},
}

# --- Celery -----------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.url(
    "CELERY_BROKER_URL", "filesystem://", schemes=("filesystem", "redis", "rediss", "amqp", "amqps", "memory")
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # default is ./control in the working directory
        "store_processed": False,
    }
    for _d in ("queue", "processed", "control"):
        (_broker_dir / _d).mkdir(parents=True, exist_ok=True)
# Users see job state in Job rows, never in the result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Queue for index builds (cpu unless a GPU worker is configured).
INDEX_BUILD_QUEUE = env.str("INDEX_BUILD_QUEUE", "cpu", choices=("cpu", "gpu", "default"))
# Queue for training runs (gpu when a GPU worker exists; training uses CUDA when the worker has it).
TRAINING_QUEUE = env.str("TRAINING_QUEUE", "cpu", choices=("cpu", "gpu", "default"))

LOG_LEVEL = env.str("LOG_LEVEL", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "faiss.loader": {"level": "WARNING"},  # it narrates every CPU-feature probe at INFO
        "kombu.connection": {"level": "ERROR"},  # "no hostname" is expected with the filesystem broker
        # Scanners send bad Host headers all day: the 400 is in the access log, without a traceback per request.
        "django.security.DisallowedHost": {"level": "CRITICAL"},
    },
}

for _d in (VAR_DIR, ARTIFACTS_DIR, UPLOAD_DIR):
    _d.mkdir(parents=True, exist_ok=True)

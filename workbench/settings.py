"""Settings, driven by environment variables (every one is listed in .env.example).

Default: SQLite and a filesystem Celery broker, so `make run` needs no server. Production: DATABASE_URL (PostgreSQL)
and CELERY_BROKER_URL (Redis).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-insecure-key-change-me" if DEBUG else "")
if not SECRET_KEY:
    raise RuntimeError("SECRET_KEY must be set when DEBUG is off")
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

VAR_DIR = env_path("VAR_DIR", BASE_DIR / "var")
ARTIFACTS_DIR = env_path("ARTIFACTS_DIR", VAR_DIR / "artifacts")
UPLOAD_DIR = env_path("UPLOAD_DIR", VAR_DIR / "uploads")
SCIFACT_DIR = env_path("SCIFACT_DIR", (BASE_DIR / ".." / "shared" / "datasets" / "scifact").resolve())
# Largest file an import accepts; larger files are refused before anything is read.
IMPORT_MAX_BYTES = int(os.environ.get("IMPORT_MAX_BYTES", str(500 * 1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 1000
# A running job whose heartbeat is older than this is taken as lost (its worker died) and marked failed.
JOB_HEARTBEAT_TIMEOUT_S = int(os.environ.get("JOB_HEARTBEAT_TIMEOUT_S", "120"))
# Torch CPU threads for batch work (index builds, training); 0: all cores.
TORCH_THREADS = int(os.environ.get("TORCH_THREADS", "0"))
# Torch CPU threads for query-time encoding. One thread per query is faster under load: with two, every query's
# tiny matmuls wait at thread barriers whenever another process holds a core (median 450 ms vs 17 ms measured).
SEARCH_TORCH_THREADS = int(os.environ.get("SEARCH_TORCH_THREADS", "1"))
# Reranking scores a batch of pairs, which does use more cores (0: all cores).
RERANK_TORCH_THREADS = int(os.environ.get("RERANK_TORCH_THREADS", "0"))
# Tokens per (query, passage) pair a reranker reads: cross-encoder cost grows with it (see bench/results/api.json).
RERANK_MAX_LENGTH = int(os.environ.get("RERANK_MAX_LENGTH", "256"))

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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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
DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", _sqlite_default), conn_max_age=60)}
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
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"

# --- Celery -----------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
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
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Queue for index builds (cpu unless a GPU worker is configured).
INDEX_BUILD_QUEUE = os.environ.get("INDEX_BUILD_QUEUE", "cpu")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "faiss.loader": {"level": "WARNING"},  # it narrates every CPU-feature probe at INFO
        "kombu.connection": {"level": "ERROR"},  # "no hostname" is expected with the filesystem broker
    },
}

for _d in (VAR_DIR, ARTIFACTS_DIR, UPLOAD_DIR):
    _d.mkdir(parents=True, exist_ok=True)

"""Settings: typed environment reading (workbench/config.py), `.env` files, and safe production defaults.

The settings module is loaded in a fresh interpreter with a crafted environment, as a deployment would load it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from workbench.config import Env, parse_env_file, project_env

ROOT = Path(__file__).resolve().parents[2]
PRINT_SETTINGS = """
import json
from django.conf import settings as s
names = ["DEBUG", "SECRET_KEY", "JOB_HEARTBEAT_TIMEOUT_S", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE",
         "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER", "ALLOWED_HOSTS", "INDEX_BUILD_QUEUE"]
out = {n: getattr(s, n) for n in names}
import workbench.settings as m
out["_read"] = sorted(m.env.names)
print(json.dumps(out))
"""


def load_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a new interpreter with only `env` set (and no .env file unless ENV_FILE names one)."""
    base = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "PYTHONPATH", "SYSTEMROOT"}}
    full = {**base, "DJANGO_SETTINGS_MODULE": "workbench.settings", "ENV_FILE": "", "VAR_DIR": str(tmp_path), **env}
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60
    )


def loaded(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The ImproperlyConfigured message the settings refused with (the last line of the traceback)."""
    assert result.returncode != 0, result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: "), result.stderr[-3000:]
    return last.removeprefix("django.core.exceptions.ImproperlyConfigured: ")


# --- loading the settings module -------------------------------------------------------------------------------


def test_debug_is_off_by_default_and_then_a_secret_key_is_required(tmp_path: Path) -> None:
    message = refused(load_settings(tmp_path))
    assert "SECRET_KEY must be set" in message and "DEBUG" in message
    assert "SECRET_KEY must be set" in refused(load_settings(tmp_path, DEBUG="false", SECRET_KEY=""))
    # The built-in development key is never accepted in production.
    assert "SECRET_KEY" in refused(load_settings(tmp_path, DEBUG="false", SECRET_KEY="dev-only-insecure-key-change-me"))


def test_production_defaults_are_secure(tmp_path: Path) -> None:
    key = secrets.token_urlsafe(50)
    values = loaded(load_settings(tmp_path, SECRET_KEY=key))
    assert values["DEBUG"] is False
    assert values["SECRET_KEY"] == key
    assert values["SECURE_SSL_REDIRECT"] is True and values["SESSION_COOKIE_SECURE"] is True
    assert values["SECURE_HSTS_SECONDS"] == 31_536_000
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    # Each one can be turned off explicitly (SECURE_PROXY_SSL_HEADER set but empty: no proxy header is trusted).
    values = loaded(load_settings(tmp_path, SECRET_KEY=key, SECURE_SSL_REDIRECT="0", SECURE_PROXY_SSL_HEADER=""))
    assert values["SECURE_SSL_REDIRECT"] is False and values["SECURE_PROXY_SSL_HEADER"] is None


def test_debug_asked_for_gets_development_defaults(tmp_path: Path) -> None:
    values = loaded(load_settings(tmp_path, DEBUG="true"))
    assert values["DEBUG"] is True
    assert values["SECRET_KEY"]  # the built-in development key
    assert values["SECURE_SSL_REDIRECT"] is False and values["SECURE_HSTS_SECONDS"] == 0
    assert values["JOB_HEARTBEAT_TIMEOUT_S"] == 120
    assert values["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]", "testserver"]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DEBUG", "maybe", "a boolean"),
        ("JOB_HEARTBEAT_TIMEOUT_S", "abc", "an integer >= 1"),
        ("JOB_HEARTBEAT_TIMEOUT_S", "0", "an integer >= 1"),
        ("IMPORT_MAX_BYTES", "500MB", "an integer"),
        ("SECURE_HSTS_SECONDS", "1 year", "an integer >= 0"),
        ("SECURE_SSL_REDIRECT", "yes please", "a boolean"),
        ("DATABASE_URL", "mysql://db/workbench", "postgresql://"),
        ("CELERY_BROKER_URL", "127.0.0.1:6379", "redis://"),
        ("INDEX_BUILD_QUEUE", "gpus", "one of cpu, gpu, default"),
        ("LOG_LEVEL", "loud", "one of DEBUG"),
        ("TIME_ZONE", "Mars/Olympus", "an IANA time zone"),
        ("SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO", "two comma-separated values"),
    ],
)
def test_a_malformed_value_stops_loading_with_its_name(tmp_path: Path, name: str, value: str, expected: str) -> None:
    message = refused(load_settings(tmp_path, **{"DEBUG": "true", name: value}))
    assert message.startswith(f"{name}={value!r}")
    assert expected in message


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / "test.env"
    env_file.write_text("# comment\nDEBUG=true\nexport JOB_HEARTBEAT_TIMEOUT_S=7\nINDEX_BUILD_QUEUE='gpu'\n")
    values = loaded(load_settings(tmp_path, ENV_FILE=str(env_file)))
    assert values["DEBUG"] is True and values["JOB_HEARTBEAT_TIMEOUT_S"] == 7 and values["INDEX_BUILD_QUEUE"] == "gpu"
    values = loaded(load_settings(tmp_path, ENV_FILE=str(env_file), JOB_HEARTBEAT_TIMEOUT_S="9"))
    assert values["JOB_HEARTBEAT_TIMEOUT_S"] == 9
    env_file.write_text("DEBUG=true\nJOB_HEARTBEAT_TIMEOUT_S=soon\n")
    message = refused(load_settings(tmp_path, ENV_FILE=str(env_file)))
    assert message.startswith(f"JOB_HEARTBEAT_TIMEOUT_S='soon' (from {env_file})")


def test_a_missing_env_file_named_explicitly_is_an_error(tmp_path: Path) -> None:
    assert refused(load_settings(tmp_path, ENV_FILE=str(tmp_path / "nope.env"))).startswith("ENV_FILE=")


def test_env_example_works_as_a_dot_env_and_lists_every_variable(tmp_path: Path) -> None:
    example = ROOT / ".env.example"
    values = loaded(load_settings(tmp_path, ENV_FILE=str(example), DEBUG="true"))  # as `make run` with it copied
    assert values["JOB_HEARTBEAT_TIMEOUT_S"] == 120 and values["SECURE_SSL_REDIRECT"] is False
    # Production from the example still needs a secret key: it ships none.
    assert "SECRET_KEY" in refused(load_settings(tmp_path, ENV_FILE=str(example)))
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example.read_text(), flags=re.M))
    gunicorn_conf = (ROOT / "workbench" / "gunicorn.conf.py").read_text()
    serve = (ROOT / "workbench" / "management" / "commands" / "serve.py").read_text()
    read = set(values["_read"]) | set(re.findall(r'env\.\w+\("([A-Z][A-Z0-9_]+)"', gunicorn_conf + serve))
    assert read - listed == set(), "variables missing from .env.example"


def test_check_deploy_is_clean_with_production_defaults(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ENV_FILE": "",
        "VAR_DIR": str(tmp_path),
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "workbench.example.com",
        "DJANGO_SETTINGS_MODULE": "workbench.settings",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


# --- workbench.config ------------------------------------------------------------------------------------------


def test_env_bool() -> None:
    env = Env({"A": "Yes", "B": " off ", "C": "", "D": "2"})
    assert env.bool("A", False) is True and env.bool("B", True) is False
    assert env.bool("C", True) is True and env.bool("MISSING", False) is False  # empty or unset: the default
    with pytest.raises(ImproperlyConfigured, match=r"^D='2' is malformed: expected a boolean"):
        env.bool("D", False)


def test_env_int_and_lists_and_pairs() -> None:
    env = Env({"N": "1_000", "NEG": "-1", "X": "1.5", "L": " a, ,b ", "E": "", "P": "H, v", "P3": "a,b,c"})
    assert env.int("N", 0) == 1000 and env.int("MISSING", 5) == 5
    with pytest.raises(ImproperlyConfigured, match=r"NEG='-1' is malformed: expected an integer >= 0"):
        env.int("NEG", 0, min_value=0)
    with pytest.raises(ImproperlyConfigured, match=r"X='1\.5'"):
        env.int("X", 0)
    assert env.list("L") == ["a", "b"] and env.list("E", ["x"]) == [] and env.list("MISSING", ["x"]) == ["x"]
    assert env.pair("P", None) == ("H", "v") and env.pair("E", ("a", "b")) is None
    with pytest.raises(ImproperlyConfigured, match="P3="):
        env.pair("P3", None)
    assert env.names >= {"N", "NEG", "X", "L", "E", "P", "P3", "MISSING"}


def test_env_path_str_url(tmp_path: Path) -> None:
    env = Env({"REL": "data/x", "ABS": str(tmp_path), "Q": "gpu", "U": "redis://h:1/0", "BAD": "h:1"})
    assert env.path("REL", Path("/d"), base=tmp_path) == tmp_path / "data" / "x"
    assert env.path("ABS", Path("/d"), base=Path("/elsewhere")) == tmp_path
    assert env.path("MISSING", Path("/d"), base=tmp_path) == Path("/d")
    assert env.str("Q", "cpu", choices=("cpu", "gpu")) == "gpu"
    assert env.url("U", "filesystem://", schemes=("redis",)) == "redis://h:1/0"
    with pytest.raises(ImproperlyConfigured, match="expected a URL starting with redis://"):
        env.url("BAD", "", schemes=("redis",))


def test_parse_env_file(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("\n# a comment\nA=1\nexport B = two words  # trailing comment\nC='# kept'\nD=\"x y\"\nE=\nF=a=b\n")
    assert parse_env_file(path) == {"A": "1", "B": "two words", "C": "# kept", "D": "x y", "E": "", "F": "a=b"}
    path.write_text("A=1\nnot a variable\n")
    with pytest.raises(ImproperlyConfigured, match=r"line 2: expected KEY=VALUE"):
        parse_env_file(path)


def test_env_file_never_overrides_the_environment(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("A=file\nB=file\n")
    environ = {"A": "env"}
    env = Env(environ)
    env.load_file(path)
    env.load_file(tmp_path / "missing.env")  # a missing default file is fine
    assert environ == {"A": "env", "B": "file"} and env.from_file == {"B": path}


def test_project_env_reads_the_default_dot_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("WB_TEST_ONLY_VARIABLE=from-file\n")
    monkeypatch.delenv("ENV_FILE", raising=False)
    monkeypatch.setenv("WB_TEST_ONLY_VARIABLE", "")  # recorded, so the variable is removed again afterwards
    monkeypatch.delenv("WB_TEST_ONLY_VARIABLE")
    env = project_env(tmp_path)
    assert env.str("WB_TEST_ONLY_VARIABLE") == "from-file"
    assert os.environ["WB_TEST_ONLY_VARIABLE"] == "from-file"  # child processes and libraries see it too


def test_env_float_with_one_bound_only() -> None:
    env = Env({"MS": "500", "LOW": "0.5", "HIGH": "2"})
    assert env.float("MS", 1.0, min_value=1.0) == 500.0  # a set value with no upper bound parses
    with pytest.raises(ImproperlyConfigured, match=r"LOW='0\.5' is malformed: expected a number >= 1$"):
        env.float("LOW", 1.0, min_value=1.0)
    with pytest.raises(ImproperlyConfigured, match=r"expected a number <= 1$"):
        env.float("HIGH", 0.5, max_value=1.0)

"""Typed reading of settings from the environment and an optional `.env` file.

Every reader names the variable and the expected form when a value is malformed (`ImproperlyConfigured`), instead of
silently falling back to a default or failing later with a bare ValueError. Environment variables win over the file.
Only django.core.exceptions is imported, so the gunicorn config can use this module before Django is set up.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from collections.abc import Iterable, MutableMapping
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a dotenv file: blank lines and `#` comments are skipped, `export ` is allowed, a value may be
    single- or double-quoted (then it is taken literally; unquoted values lose a trailing ` # comment`)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        match = _LINE.match(raw)
        if not match:
            raise ImproperlyConfigured(f"{path}, line {number}: expected KEY=VALUE, got {raw.strip()!r}")
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.sub(r"\s+#.*$", "", value)
        values[key] = value
    return values


class Env:
    """Typed, validated access to variables. `from_file` records which came from the `.env` file, for the messages."""

    def __init__(self, environ: MutableMapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self.from_file: dict[str, Path] = {}
        self.names: set[str] = set()  # every variable read, so a test can check .env.example lists them all

    def load_file(self, path: Path) -> None:
        """Add the file's variables that the environment does not set (the environment wins). A missing file is fine."""
        if not path.is_file():
            return
        for key, value in parse_env_file(path).items():
            if key not in self.environ:
                self.environ[key] = value
                self.from_file[key] = path

    def _raw(self, name: str) -> str | None:
        self.names.add(name)
        value = self.environ.get(name)
        return None if value is None else value.strip()

    def _fail(self, name: str, value: str, expected: str) -> ImproperlyConfigured:
        where = f" (from {self.from_file[name]})" if name in self.from_file else ""
        return ImproperlyConfigured(f"{name}={value!r}{where} is malformed: expected {expected}")

    def str(self, name: str, default: str = "", *, choices: Iterable[str] | None = None) -> str:
        value = self._raw(name)
        if value is None or value == "":
            return default
        if choices is not None and value not in (options := tuple(choices)):
            raise self._fail(name, value, "one of " + ", ".join(options))
        return value

    def bool(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None or value == "":
            return default
        if value.lower() in TRUE:
            return True
        if value.lower() in FALSE:
            return False
        raise self._fail(name, value, "a boolean: true/false, 1/0, yes/no or on/off")

    def int(self, name: str, default: int, *, min_value: int | None = None) -> int:
        value = self._raw(name)
        if value is None or value == "":
            return default
        expected = "an integer" + (f" >= {min_value}" if min_value is not None else "")
        try:
            number = int(value.replace("_", ""))
        except ValueError:
            raise self._fail(name, value, expected) from None
        if min_value is not None and number < min_value:
            raise self._fail(name, value, expected)
        return number

    def float(
        self, name: str, default: float, *, min_value: float | None = None, max_value: float | None = None
    ) -> float:
        value = self._raw(name)
        if value is None or value == "":
            return default
        bounds = [f"{op} {v:g}" for op, v in ((">=", min_value), ("<=", max_value)) if v is not None]
        expected = "a number" + (f" {' and '.join(bounds)}" if bounds else "")
        try:
            number = float(value)
        except ValueError:
            raise self._fail(name, value, expected) from None
        if (min_value is not None and number < min_value) or (max_value is not None and number > max_value):
            raise self._fail(name, value, expected)
        return number

    def list(self, name: str, default: Iterable[str] = ()) -> list[str]:
        """Comma-separated; blanks dropped. Set but empty means the empty list."""
        value = self._raw(name)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def path(self, name: str, default: Path, *, base: Path) -> Path:
        """An absolute path; a relative one is taken relative to `base` (the repository), not the working directory."""
        value = self._raw(name)
        if value is None or value == "":
            return default
        path = Path(value).expanduser()
        return (path if path.is_absolute() else base / path).resolve()

    def url(self, name: str, default: str, *, schemes: Iterable[str]) -> str:
        value = self._raw(name)
        if value is None or value == "":
            return default
        options = tuple(schemes)
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in options:
            raise self._fail(name, value, "a URL starting with " + ", ".join(f"{s}://" for s in options))
        return value

    def timezone(self, name: str, default: str) -> str:
        value = self.str(name, default)
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise self._fail(name, value, "an IANA time zone such as UTC or Europe/Berlin") from None
        return value

    def pair(self, name: str, default: tuple[str, str] | None) -> tuple[str, str] | None:
        """Two comma-separated values (e.g. a header and the value it must have); set but empty means None."""
        value = self._raw(name)
        if value is None:
            return default
        if value == "":
            return None
        parts = [p.strip() for p in value.split(",")]
        if len(parts) != 2 or not all(parts):
            raise self._fail(name, value, "two comma-separated values, e.g. HTTP_X_FORWARDED_PROTO,https")
        return parts[0], parts[1]


def project_env(base_dir: Path) -> Env:
    """The process environment with `ENV_FILE` (default `<repo>/.env` if it exists; empty: no file) loaded beneath it.

    Loading into os.environ (without overriding) lets libraries and child processes see the file's values too
    (HF_HUB_OFFLINE, DEMO_PASSWORD)."""
    env = Env()
    name = os.environ.get("ENV_FILE")
    if name is None:
        env.load_file(base_dir / ".env")
    elif name.strip():
        path = Path(name.strip()).expanduser()
        path = path if path.is_absolute() else base_dir / path
        if not path.is_file():
            raise ImproperlyConfigured(f"ENV_FILE={name!r} is malformed: expected the path of an existing file")
        env.load_file(path)
    return env

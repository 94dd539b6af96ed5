"""The retrieval engine is reusable outside Django (notebooks, scripts): importing it must never import Django."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import workbench.retrieval

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(m.name for m in pkgutil.iter_modules(workbench.retrieval.__path__, "workbench.retrieval."))

_IMPORT_ALL = (
    "import importlib, sys\n"
    "for name in {modules!r}:\n"
    "    importlib.import_module(name)\n"
    "leaked = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
    "assert not leaked, f'django was imported: {{leaked[:5]}}'\n"
)

# Registers ``workbench`` as a bare package so ``workbench/__init__.py`` is not executed.
_BARE_PARENT = (
    "import sys, types\n"
    "pkg = types.ModuleType('workbench')\n"
    "pkg.__path__ = [{path!r}]\n"
    "sys.modules['workbench'] = pkg\n"
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_package_modules_import_no_django() -> None:
    """No module of workbench/retrieval imports Django (parent package bypassed)."""
    assert "workbench.retrieval.search" in MODULES and "workbench.retrieval.encoders" in MODULES
    code = _BARE_PARENT.format(path=str(REPO_ROOT / "workbench")) + _IMPORT_ALL.format(modules=MODULES)
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_importing_the_package_imports_no_django() -> None:
    """The real import path, ``workbench/__init__.py`` included, must not pull Django in either."""
    proc = _run(_IMPORT_ALL.format(modules=MODULES))
    assert proc.returncode == 0, (
        "importing workbench.retrieval imported Django; if the first test passes, the cause is "
        "workbench/__init__.py (e.g. importing the Celery app there)\n" + proc.stderr[-2000:]
    )

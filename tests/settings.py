"""Settings for the test suite: the project's settings with development defaults asked for explicitly.

DEBUG=true here only selects the development defaults at import time (the built-in secret key, no HTTPS redirect or
secure-only cookies: tests speak plain HTTP); pytest-django still runs every test with DEBUG off. An explicit
environment wins, e.g. the settings tests start subprocesses with their own environment.
"""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "true")

from workbench.settings import *  # noqa: F403

# Hashed static names need `collectstatic` first; tests render templates straight from the source folders.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

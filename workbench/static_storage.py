"""Static files storage for production: whitenoise's compressed, hashed-name (manifest) storage."""

from __future__ import annotations

from django.contrib.staticfiles.storage import HashedFilesMixin
from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Leaves `//# sourceMappingURL=` comments in JavaScript alone: the vendored minified libraries name source maps
    we do not ship, and rewriting them would make `collectstatic` fail on the missing `.map` file."""

    patterns = tuple(p for p in HashedFilesMixin.patterns if p[0] != "*.js")

from __future__ import annotations

import pytest

from tests.conftest import SCIFACT


@pytest.fixture
def scifact_gold(settings):  # type: ignore[no-untyped-def]
    """The real SciFact folder (original release files) as the gold-evidence setting."""
    if not (SCIFACT / "original" / "claims_dev.jsonl").is_file():
        pytest.skip(f"SciFact's original release not found at {SCIFACT / 'original'}")
    settings.SCIFACT_DIR = SCIFACT
    return SCIFACT

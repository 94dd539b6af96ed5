"""Session-scoped tiny models for any test suite: import these names into a conftest.py to use them, e.g.
``from tests.retrieval.fixtures import tiny_encoder_path, tiny_cross_encoder_path  # noqa: F401``."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.retrieval.testing import build_tiny_cross_encoder, build_tiny_encoder


@pytest.fixture(scope="session")
def tiny_encoder_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny sentence-transformers bi-encoder (32-d, MiniLM tokenizer) saved in a session temp dir."""
    return build_tiny_encoder(tmp_path_factory.mktemp("models") / "tiny-encoder")


@pytest.fixture(scope="session")
def tiny_cross_encoder_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny sentence-transformers cross-encoder (one logit, MiniLM tokenizer) saved in a session temp dir."""
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("models") / "tiny-cross-encoder")

"""Error types raised by the metrics package."""

from __future__ import annotations


class MetricsError(ValueError):
    """Invalid input or an impossible request; the message is meant for users."""


class SemanticsMismatchError(MetricsError):
    """Two results were computed under different evaluation semantics."""

"""The one error type services raise: its message is shown to users as is."""

from __future__ import annotations


class WorkbenchError(Exception):
    """A problem a user can act on (bad input, a conflicting state); never a bug."""


class PermanentJobError(WorkbenchError):
    """A job failure that retrying cannot fix (bad input): no Retry is offered."""

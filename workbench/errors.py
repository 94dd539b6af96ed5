"""The one error type services raise: its message is shown to users as is."""

from __future__ import annotations


class WorkbenchError(Exception):
    """A problem a user can act on (bad input, a conflicting state); never a bug."""


class NotFoundError(WorkbenchError):
    """The object a request names does not exist (in this project): the API answers 404."""


class PermanentJobError(WorkbenchError):
    """A job failure that running the same job again cannot fix (a malformed file, a file already imported).

    Raise it from job code for input problems found before any work is kept; the job fails without a Retry button.
    """

"""Errors raised by the retrieval engine.

``RetrievalError`` carries a message a user can act on (a bad path, parameters that cannot work, a query that is too
long); Django services can catch it and re-raise their own error type with the same message.
"""

from __future__ import annotations


class RetrievalError(ValueError):
    """A problem with the input or configuration that a user can fix; never a bug."""


class QueryTooLongError(RetrievalError):
    """The query is longer than the engine accepts (the API maps it to HTTP 400)."""


class OperationCancelled(Exception):
    """Raised between batches when a ``cancel_check`` callback asks a long operation to stop."""

"""Server timing: every response says how long the app spent on it (``Server-Timing``), so a load test or the
browser's network panel can tell time in the server from time queued in front of it or on the wire."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.http import HttpRequest, HttpResponse


class _DbClock:
    """Counts and times the SQL statements run while it is installed (``connection.execute_wrapper``)."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: dict) -> Any:
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - t0
            self.count += 1


class ServerTimingMiddleware:
    """``Server-Timing: app;dur=<ms>, db;dur=<ms>;desc="<n> queries"``: wall time inside Django (all middleware
    below this one, the view, the template) and the share of it spent in the default database."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        clock = _DbClock()
        t0 = time.perf_counter()
        with connections["default"].execute_wrapper(clock):
            response = self.get_response(request)
        app_ms = (time.perf_counter() - t0) * 1000
        # Streaming responses are timed up to their first byte: what the view itself took.
        response["Server-Timing"] = (
            f'app;dur={app_ms:.1f}, db;dur={clock.seconds * 1000:.1f};desc="{clock.count} queries"'
        )
        return response

from __future__ import annotations

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def highlight(text: str, query: str) -> SafeString:
    """Escape untrusted text, then wrap the query's words (3+ letters) in <mark>. Matching runs on escaped text with
    escaped terms, so no markup from the document or the query can get through."""
    safe = escape(text)
    terms = sorted({t for t in re.findall(r"\w{3,}", query or "")}, key=len, reverse=True)[:20]
    if not terms:
        return mark_safe(safe)
    pattern = re.compile(r"\b(" + "|".join(re.escape(escape(t)) for t in terms) + r")", re.IGNORECASE)
    return mark_safe(pattern.sub(r"<mark>\1</mark>", safe))


@register.filter
def get_item(mapping: dict, key: str):  # type: ignore[no-untyped-def]
    return mapping.get(key) if mapping else None


@register.simple_tag
def job_details(job):  # type: ignore[no-untyped-def]
    """What the shared job-status partial shows beyond the row: queue place, result fields, links (reads only)."""
    from workbench import selectors

    return {
        "ahead": selectors.job_queue_ahead(job),
        "fields": selectors.job_result_fields(job),
        "links": selectors.job_links(job),
    }


@register.filter
def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@register.filter
def readable(value):  # type: ignore[no-untyped-def]
    """A JSON value (metadata, parameters) as plain text instead of a Python repr."""
    from workbench.selectors import readable_value

    return readable_value(value)


@register.filter
def words(key: str) -> str:
    """An internal key as words: "index_build" -> "index build"."""
    return str(key or "").replace("_", " ")


@register.filter
def role_label(role: str) -> str:
    """A role's stored value as its label ("ml_lead" -> "ML lead")."""
    from workbench.models import Role

    return str(Role(role).label) if role in Role.values else str(role or "")

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

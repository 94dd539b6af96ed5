"""Template helpers of the labeling app: guidelines markdown rendered safely, agreement figures."""

from __future__ import annotations

import functools

from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


def _md():  # type: ignore[no-untyped-def]
    from markdown_it import MarkdownIt

    # CommonMark with raw HTML disabled: any tag in the source is escaped, never rendered; markdown-it also refuses
    # javascript:/data: link targets.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).disable("image")


_RENDERER = None


@functools.lru_cache(maxsize=256)
def _render(text: str) -> str:
    """Rendered once per process per distinct text: a guideline version is immutable, so its text (and so its
    HTML) never changes; a new version is a new text and a new cache entry."""
    global _RENDERER
    if _RENDERER is None:
        _RENDERER = _md()
    return _RENDERER.render(text)


@register.filter
def guideline_markdown(text: str) -> SafeString:
    return mark_safe(_render(text or ""))  # html disabled: the renderer escapes all markup


@register.filter
def figure(fig) -> str:  # type: ignore[no-untyped-def]
    """'0.62 [0.41, 0.78] · n=40' or 'n/a · n=3'."""
    if fig is None:
        return "—"
    if not fig.defined:
        return f"n/a · n={fig.items}"
    ci = f" [{fig.low:.2f}, {fig.high:.2f}]" if fig.low is not None else ""
    return f"{fig.value:.3f}{ci} · n={fig.items}"

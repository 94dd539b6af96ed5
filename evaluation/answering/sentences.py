"""Sentence helpers of the answer backends: the splitter (shared with index builds) and content-word overlap."""

from __future__ import annotations

import re

from workbench.retrieval.sentences import MIN_CITABLE_CHARS, Span, citable_spans, split_sentences

__all__ = ["MIN_CITABLE_CHARS", "STOPWORDS", "Span", "citable_spans", "content_words", "overlap", "split_sentences"]

_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "with",
        "which",
        "not",
        "no",
        "than",
        "then",
        "there",
        "these",
        "those",
        "into",
        "can",
        "may",
    ]
)


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in STOPWORDS}


def overlap(a: str, b: str) -> float:
    """Share of ``a``'s content words found in ``b`` (0 when ``a`` has none)."""
    wa = content_words(a)
    return len(wa & content_words(b)) / len(wa) if wa else 0.0

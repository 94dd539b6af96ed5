"""Sentence splitting into character spans: the claims of an answer and the citable units of a passage.

It lives with retrieval because an index build embeds the citable sentences of every passage ahead of time
(``sentence_vectors``); the answer backends split the same way, so the spans they look up are the ones stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A sentence ends at . ! ? (optionally closed by quotes/brackets) followed by whitespace and an upper-case letter,
# a digit or an opening bracket, unless the word before the period is a known abbreviation.
_BOUNDARY = re.compile(r"[.!?][\"')\]]*\s+(?=[A-Z0-9(\[\"'])")
_ABBREVIATIONS = frozenset(
    [
        "e.g",
        "i.e",
        "al",
        "fig",
        "figs",
        "vs",
        "etc",
        "approx",
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "no",
        "nos",
        "ref",
        "refs",
        "eq",
        "eqs",
        "ca",
        "cf",
        "resp",
        "st",
        "jr",
        "sr",
        "inc",
        "ltd",
        "co",
    ]
)


@dataclass(frozen=True)
class Span:
    start: int
    end: int

    def of(self, text: str) -> str:
        return text[self.start : self.end]


def split_sentences(text: str) -> list[Span]:
    """Non-empty sentence spans of ``text``, stripped of surrounding whitespace, in order."""
    spans: list[Span] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        before = text[start : m.start()].rsplit(None, 1)
        word = before[-1].lstrip("([\"'").lower().rstrip(".") if before else ""
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):  # "et al. Smith", "J. Smith"
            continue
        end = m.start() + len(m.group(0).rstrip())
        spans.append(Span(start, end))
        start = m.end()
    spans.append(Span(start, len(text)))
    out = []
    for s in spans:
        a, b = s.start, s.end
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append(Span(a, b))
    return out


# Shorter sentences are never cited alone (headings, "Results.", list markers).
MIN_CITABLE_CHARS = 20


def citable_spans(text: str, *, starts_mid_sentence: bool = False) -> list[Span]:
    """The sentences of ``text`` an answer may cite: long enough, and not a fragment the passage starts inside."""
    return [
        s
        for n, s in enumerate(split_sentences(text))
        if s.end - s.start >= MIN_CITABLE_CHARS and not (n == 0 and starts_mid_sentence)
    ]

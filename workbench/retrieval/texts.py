"""The text an encoder, BM25 and a reranker read for a passage: one function, used at indexing and at training time.

Training on different text than the index holds (no title, other separators) silently costs quality, so every path
that feeds a model a passage builds it here.
"""

from __future__ import annotations


def passage_text(title: str, text: str) -> str:
    """The document title gives context to every chunk of it; a title-only document is its title."""
    if not title:
        return text
    return f"{title}\n{text}" if text else title

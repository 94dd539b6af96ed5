"""Django-free answer generation: passages in, an answer with claims and citations (char spans) out.

Backends (``extractive``, ``hf-local``, ``openai-compatible``) share one protocol, ``Generator.generate(query,
passages) -> Answer``, and one error type, ``GenerationError`` with a ``kind`` a run records per query. Retrieved text
is untrusted: prompts quote it as data between tags and tell the model never to follow instructions in it.
"""

from __future__ import annotations

from .base import (
    ABSTAIN_TEXT,
    CITATION_POLICIES,
    Answer,
    Citation,
    Claim,
    GenerationError,
    Generator,
    RetrievedPassage,
)
from .extractive import ExtractiveGenerator
from .prompt import build_messages, parse_answer
from .sentences import Span, split_sentences

BACKENDS = ("extractive", "hf-local", "openai-compatible")

__all__ = [
    "ABSTAIN_TEXT",
    "BACKENDS",
    "CITATION_POLICIES",
    "Answer",
    "Citation",
    "Claim",
    "ExtractiveGenerator",
    "GenerationError",
    "Generator",
    "RetrievedPassage",
    "Span",
    "build_messages",
    "parse_answer",
    "split_sentences",
]

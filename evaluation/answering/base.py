"""The plain data every backend takes and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

ABSTAIN_TEXT = "I cannot answer this from the retrieved passages: the evidence is too weak."

# Citation policy -> the sentence the prompt states (and the run page shows).
CITATION_POLICIES: dict[str, str] = {
    "each-claim": "Every sentence of your answer must cite at least one passage that supports it.",
    "at-least-one": "Cite at least one passage for the answer; cite every passage you use.",
}
DEFAULT_POLICY = "each-claim"

# Why a query got no answer; the run records it per query and carries on.
ERROR_KINDS = ("down", "timeout", "bad-model", "bad-citation", "context", "bad-response", "retrieval", "error")


class GenerationError(Exception):
    """A backend could not answer this query (down, timed out, not a model, cited what it was not given, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind if kind in ERROR_KINDS else "error"


@dataclass(frozen=True)
class RetrievedPassage:
    """One retrieved passage as a generator sees it: ``number`` is its 1-based place in the prompt."""

    number: int
    passage_id: int
    doc_id: str
    title: str
    text: str
    score: float
    # The chunk starts inside a sentence of its document: its first "sentence" is a fragment, never cited alone.
    starts_mid_sentence: bool = False


@dataclass(frozen=True)
class Citation:
    """Passage ``number`` (1-based, as in the prompt) supports the claim; ``start:end`` is the span in its text."""

    number: int
    start: int
    end: int


@dataclass(frozen=True)
class Claim:
    """One sentence of the answer (``start:end`` in the answer text, citation markers excluded) and its citations."""

    text: str
    start: int
    end: int
    citations: tuple[Citation, ...] = ()


@dataclass
class Answer:
    text: str
    claims: list[Claim] = field(default_factory=list)
    abstained: bool = False
    confidence: float | None = None
    raw: str = ""  # what the model returned, before parsing (empty for extractive)

    @property
    def cited_numbers(self) -> set[int]:
        return {c.number for claim in self.claims for c in claim.citations}


class Generator(Protocol):
    name: str

    def generate(self, query: str, passages: list[RetrievedPassage], *, policy: str, threshold: float) -> Answer: ...


def check_citations(answer: Answer, passages: list[RetrievedPassage]) -> Answer:
    """An answer citing a passage it was not given is a failure, not an answer with a dangling citation."""
    given = {p.number for p in passages}
    unknown = sorted(answer.cited_numbers - given)
    if unknown:
        raise GenerationError(
            "bad-citation",
            f"the answer cites passage{'s' if len(unknown) > 1 else ''} {', '.join(map(str, unknown))} "
            f"but only {len(passages)} were retrieved",
        )
    lengths = {p.number: len(p.text) for p in passages}
    for claim in answer.claims:
        for c in claim.citations:
            if not 0 <= c.start <= c.end <= lengths[c.number]:
                raise GenerationError("bad-citation", f"citation span {c.start}:{c.end} is outside passage {c.number}")
    return answer

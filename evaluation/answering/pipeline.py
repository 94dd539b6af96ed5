"""One query through a backend: the abstention gate, the backend, and the checks on what it returned."""

from __future__ import annotations

from .base import ABSTAIN_TEXT, Answer, Generator, RetrievedPassage
from .extractive import ExtractiveGenerator


def answer_query(
    generator: Generator,
    query: str,
    passages: list[RetrievedPassage],
    *,
    policy: str,
    threshold: float,
    gate: ExtractiveGenerator | None = None,
) -> Answer:
    """The answer of ``generator``, or an abstention when the evidence is weak.

    The extractive backend gates itself. A generative backend is gated by ``gate`` (the same sentence scorer) before
    any model is called, so a weak retrieval costs no generation; the model may still refuse on its own.
    Raises ``GenerationError`` (recorded per query by the caller).
    """
    if isinstance(generator, ExtractiveGenerator):
        return generator.generate(query, passages, policy=policy, threshold=threshold)
    confidence = gate.confidence(query, passages) if gate is not None else None
    if not passages or (confidence is not None and confidence < threshold):
        return Answer(text=ABSTAIN_TEXT, abstained=True, confidence=confidence)
    answer = generator.generate(query, passages, policy=policy, threshold=threshold)
    answer.confidence = confidence
    return answer

"""The default backend: the sentences of the top passages that best match the query, each citing its passage.

It needs no generator model and runs on any CPU. Sentences are scored by cosine similarity with the query under the
index's own encoder when one is given (``embed_query``/``embed_texts``), else by the share of the query's content words
they contain. The answer's confidence is the best sentence's score; below the run's threshold it abstains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .base import ABSTAIN_TEXT, Answer, Citation, Claim, RetrievedPassage, check_citations
from .sentences import overlap, split_sentences

EmbedQuery = Callable[[str], np.ndarray]
EmbedTexts = Callable[[Sequence[str]], np.ndarray]
MIN_SENTENCE_CHARS = 20


class ExtractiveGenerator:
    name = "extractive"

    def __init__(
        self,
        *,
        embed_query: EmbedQuery | None = None,
        embed_texts: EmbedTexts | None = None,
        max_sentences: int = 2,
        passages_considered: int = 3,
    ) -> None:
        if (embed_query is None) != (embed_texts is None):
            raise ValueError("give both embed_query and embed_texts, or neither")
        self.embed_query, self.embed_texts = embed_query, embed_texts
        self.max_sentences = max(1, int(max_sentences))
        self.passages_considered = max(1, int(passages_considered))

    @property
    def scoring(self) -> str:
        return "cosine similarity (index encoder)" if self.embed_query else "content-word overlap"

    def generate(
        self, query: str, passages: list[RetrievedPassage], *, policy: str = "each-claim", threshold: float = 0.0
    ) -> Answer:
        candidates: list[tuple[RetrievedPassage, int, int, str]] = []
        for p in passages[: self.passages_considered]:
            for n, span in enumerate(split_sentences(p.text)):
                if n == 0 and p.starts_mid_sentence:
                    continue
                sentence = span.of(p.text)
                if len(sentence) >= MIN_SENTENCE_CHARS:
                    candidates.append((p, span.start, span.end, sentence))
        if not candidates:
            return Answer(text=ABSTAIN_TEXT, abstained=True, confidence=None)
        scores = self._scores(query, [c[3] for c in candidates])
        # Best first; ties by passage rank then position, so answers are reproducible.
        order = sorted(range(len(candidates)), key=lambda i: (-scores[i], candidates[i][0].number, candidates[i][1]))
        confidence = float(scores[order[0]])
        if confidence < threshold:
            return Answer(text=ABSTAIN_TEXT, abstained=True, confidence=confidence)
        picked = [i for i in order[: self.max_sentences] if scores[i] >= threshold]
        picked.sort(key=lambda i: (candidates[i][0].number, candidates[i][1]))  # read in passage order
        parts: list[str] = []
        claims: list[Claim] = []
        pos = 0
        for i in picked:
            p, start, end, sentence = candidates[i]
            if parts:
                parts.append(" ")
                pos += 1
            claims.append(Claim(sentence, pos, pos + len(sentence), (Citation(p.number, start, end),)))
            marker = f" [{p.number}]"
            parts.extend([sentence, marker])
            pos += len(sentence) + len(marker)
        return check_citations(Answer(text="".join(parts), claims=claims, confidence=confidence), passages)

    def confidence(self, query: str, passages: list[RetrievedPassage]) -> float | None:
        """The best sentence score (the gate generative backends use before calling a model); None if no sentence."""
        sentences = [
            span.of(p.text)
            for p in passages[: self.passages_considered]
            for n, span in enumerate(split_sentences(p.text))
            if span.end - span.start >= MIN_SENTENCE_CHARS and not (n == 0 and p.starts_mid_sentence)
        ]
        return float(self._scores(query, sentences).max()) if sentences else None

    def _scores(self, query: str, sentences: list[str]) -> np.ndarray:
        if self.embed_query is None or self.embed_texts is None:
            return np.array([overlap(query, s) for s in sentences], dtype=np.float64)
        q = np.asarray(self.embed_query(query), dtype=np.float64)
        m = np.asarray(self.embed_texts(sentences), dtype=np.float64)
        norms = np.linalg.norm(m, axis=1) * (np.linalg.norm(q) or 1.0)
        return (m @ q) / np.where(norms > 0, norms, 1.0)

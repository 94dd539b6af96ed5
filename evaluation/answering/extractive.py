"""The default backend: the sentences of the top passages that best match the query, each citing its passage.

It needs no generator model and runs on any CPU. Sentences are scored by cosine similarity with the query under the
index's own encoder when one is given (``embed_query``/``embed_texts``), else by the share of the query's content words
they contain. Sentence vectors the index stored at build time (``stored_vectors``) are used as they are, so a served
answer costs one query embedding (none when the search hands its own over: ``remember_query``); only sentences the
index lacks are embedded. The answer's confidence is the best sentence's score; below the run's threshold it abstains.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .base import ABSTAIN_TEXT, Answer, Citation, Claim, RetrievedPassage, check_citations
from .sentences import citable_spans, overlap

EmbedQuery = Callable[[str], np.ndarray]
EmbedTexts = Callable[[Sequence[str]], np.ndarray]
# (passage) -> {(start, end): unit vector} of its citable sentences embedded at index build (empty if none stored).
StoredVectors = Callable[[RetrievedPassage], Mapping[tuple[int, int], np.ndarray]]


class ExtractiveGenerator:
    name = "extractive"

    def __init__(
        self,
        *,
        embed_query: EmbedQuery | None = None,
        embed_texts: EmbedTexts | None = None,
        stored_vectors: StoredVectors | None = None,
        max_sentences: int = 2,
        passages_considered: int = 3,
    ) -> None:
        if (embed_query is None) != (embed_texts is None):
            raise ValueError("give both embed_query and embed_texts, or neither")
        if stored_vectors is not None and embed_query is None:
            raise ValueError("stored sentence vectors need the encoder that embedded them (embed_query)")
        self.embed_query, self.embed_texts = embed_query, embed_texts
        self.stored_vectors = stored_vectors
        self._query: tuple[str, np.ndarray] | None = None  # the last query embedded or handed over, and its vector
        # Of the sentences scored by cosine so far: how many came from the index, how many were embedded here.
        self.sentences_stored = self.sentences_embedded = 0
        self.max_sentences = max(1, int(max_sentences))
        self.passages_considered = max(1, int(passages_considered))

    @property
    def scoring(self) -> str:
        return "cosine similarity (index encoder)" if self.embed_query else "content-word overlap"

    def generate(
        self, query: str, passages: list[RetrievedPassage], *, policy: str = "each-claim", threshold: float = 0.0
    ) -> Answer:
        candidates = self._candidates(passages)
        if not candidates:
            return Answer(text=ABSTAIN_TEXT, abstained=True, confidence=None)
        scores = self._scores(query, candidates)
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
        candidates = self._candidates(passages)
        return float(self._scores(query, candidates).max()) if candidates else None

    def remember_query(self, query: str, vector: np.ndarray | None) -> None:
        """Hand over ``query``'s vector under the same encoder (the search's), so scoring its sentences embeds
        nothing more; a generative backend's gate and its answer then share it too."""
        if vector is not None and self.embed_query is not None:
            self._query = (query, np.asarray(vector, dtype=np.float64))

    def _query_vector(self, query: str, embed: EmbedQuery) -> np.ndarray:
        if self._query is None or self._query[0] != query:
            self._query = (query, np.asarray(embed(query), dtype=np.float64))
        return self._query[1]

    def _candidates(self, passages: list[RetrievedPassage]) -> list[tuple[RetrievedPassage, int, int, str]]:
        return [
            (p, span.start, span.end, span.of(p.text))
            for p in passages[: self.passages_considered]
            for span in citable_spans(p.text, starts_mid_sentence=p.starts_mid_sentence)
        ]

    def _scores(self, query: str, candidates: list[tuple[RetrievedPassage, int, int, str]]) -> np.ndarray:
        if self.embed_query is None or self.embed_texts is None:
            return np.array([overlap(query, c[3]) for c in candidates], dtype=np.float64)
        q = self._query_vector(query, self.embed_query)
        m = np.empty((len(candidates), q.shape[0]), dtype=np.float64)
        missing: list[int] = []
        stored: dict[int, Mapping[tuple[int, int], np.ndarray]] = {}
        for i, (p, start, end, _) in enumerate(candidates):
            if self.stored_vectors is not None and p.number not in stored:
                stored[p.number] = self.stored_vectors(p)
            vector = stored.get(p.number, {}).get((start, end))
            if vector is None:
                missing.append(i)
            else:
                m[i] = vector
        if missing:
            m[missing] = np.asarray(self.embed_texts([candidates[i][3] for i in missing]), dtype=np.float64)
        self.sentences_stored += len(candidates) - len(missing)
        self.sentences_embedded += len(missing)
        norms = np.linalg.norm(m, axis=1) * (np.linalg.norm(q) or 1.0)
        return (m @ q) / np.where(norms > 0, norms, 1.0)

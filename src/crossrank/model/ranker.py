"""The one protocol every ranker meets: score candidate lists.

A ranker (`CrossEncoder`, `FusedReranker`, a test double, a Ray worker's model) has
`score_candidates(candidates, options) -> one float array per query`; how it scores is its own
business (a cross-encoder over (query, passage) pairs, with windows for long passages; a fusion
with a bi-encoder and the first-stage scores). Callers go through `crossrank.pipeline.score`,
which checks what comes back.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from crossrank.data.candidates import Candidates

if TYPE_CHECKING:
    from crossrank.model.windows import WindowConfig


@dataclass(frozen=True)
class ScoringOptions:
    """How a ranker scores: batching, the activation of a cross-encoder's logits, long passages."""

    batch_size: int | None = None  # None: batches bounded by the model's token budget
    max_tokens_per_batch: int | None = None  # None: the backend's default budget
    activation: str | None = None  # None: the model's own (see CrossEncoder.predict)
    show_progress_bar: bool | None = False
    long_passages: str = "truncate"  # or "window": see CrossEncoder.predict
    window: WindowConfig | None = None


@runtime_checkable
class Ranker(Protocol):
    def score_candidates(self, candidates: Sequence[Candidates], options: ScoringOptions | None = None) -> list[np.ndarray]:
        """One score array per query, aligned with its candidates."""


def score_pairs_of(cross_encoder, candidates: Sequence[Candidates], options: ScoringOptions | None = None) -> list[np.ndarray]:
    """A cross-encoder's scores of candidate lists: every (query, passage) pair in one length-sorted pass."""
    options = options or ScoringOptions()
    pairs = [(c.query, text) for c in candidates for text in c.texts]
    scores = cross_encoder.predict(pairs, batch_size=options.batch_size, activation=options.activation,
                                   show_progress_bar=options.show_progress_bar, max_tokens_per_batch=options.max_tokens_per_batch,
                                   long_passages=options.long_passages, window=options.window)
    bounds = np.cumsum([0] + [len(c) for c in candidates])
    return [scores[bounds[i] : bounds[i + 1]] for i in range(len(candidates))]


def candidate_lists_of(queries: Sequence[str], texts: Sequence[Sequence[str]],
                       first_stage: Sequence[Sequence[float | None]] | None = None) -> list[Candidates]:
    """Candidates from bare texts (the `rerank_many` form): doc ids are positions, first-stage scores as given or None."""
    if len(queries) != len(texts):
        raise ValueError(f"rerank_many expects one candidate list per query, but got {len(queries)} queries and {len(texts)} lists")
    if first_stage is not None and len(first_stage) != len(texts):
        raise ValueError(f"rerank_many expects one first-stage score list per query ({len(texts)}), but got {len(first_stage)}")
    return [Candidates(str(i), q, [str(j) for j in range(len(docs))], list(docs),
                       list(first_stage[i]) if first_stage is not None else [None] * len(docs))
            for i, (q, docs) in enumerate(zip(queries, texts))]

"""`score`: candidates -> scores, the one path every caller takes (run files, evaluation while
training, the fidelity check, the quickstart), whatever the ranker (`crossrank.model.ranker.Ranker`)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crossrank.data.candidates import Candidates, to_run
from crossrank.model.ranker import Ranker, ScoringOptions


def score(ranker: Ranker, candidates: Sequence[Candidates], options: ScoringOptions | None = None) -> list[np.ndarray]:
    """One float array per query, aligned with its candidates; a ranker that returns anything else fails here."""
    if not isinstance(ranker, Ranker):
        raise TypeError(f"score expects a ranker with score_candidates(candidates, options) (a CrossEncoder, a FusedReranker), "
                        f"but got {type(ranker).__name__}")
    candidates = list(candidates)
    if not candidates:
        return []
    scores = ranker.score_candidates(candidates, options or ScoringOptions())
    if len(scores) != len(candidates) or any(len(s) != len(c) for s, c in zip(scores, candidates)):
        bad = [c.query_id for s, c in zip(scores, candidates) if len(s) != len(c)]
        raise ValueError(f"reranking expects one score per candidate, but {type(ranker).__name__} returned {len(scores)} lists for "
                         f"{len(candidates)} queries" + (f" (other lengths for queries {', '.join(bad[:5])})" if bad else ""))
    return [np.asarray(s) for s in scores]


def score_run(ranker: Ranker, candidates: Sequence[Candidates], options: ScoringOptions | None = None) -> dict[str, dict[str, float]]:
    """The run of the scored candidates: query id -> {doc id: score}."""
    candidates = list(candidates)
    return to_run(candidates, score(ranker, candidates, options))

"""Deterministic top-k selection over one query's score vector."""
from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int, id_rank: np.ndarray) -> np.ndarray:
    """Indices of the ``k`` best documents with a score > 0, best first.

    Order: score descending, then doc id descending (``id_rank[i]`` is document i's position in
    the sorted list of doc ids) -- trec_eval's rule, the one crossrank.data.rank_scores and
    write_run use, so the documents kept when several share the k-th score are the ones that
    rank first when the run is written and evaluated. Unlike an ``argpartition`` top-k, the
    result never depends on the corpus order or the platform. Scores are compared as given
    (bm25s scores are float32).
    """
    candidates = np.flatnonzero(scores > 0)
    if candidates.size > k:
        values = scores[candidates]
        kth = np.partition(values, candidates.size - k)[candidates.size - k]
        candidates = candidates[values >= kth]  # keeps every document tied with the k-th score
    order = np.lexsort((-id_rank[candidates], -scores[candidates]))
    return candidates[order[:k]]

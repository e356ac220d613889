"""Deterministic top-k selection over one query's score vector."""
from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int, tiebreak: np.ndarray) -> np.ndarray:
    """Indices of the ``k`` best documents with a score > 0, best first.

    Order: score descending, then ``tiebreak`` ascending (the index passes each document's
    position in the sorted list of doc ids, so equal scores rank by doc id). Unlike an
    ``argpartition`` top-k, which documents are kept when several share the k-th score, and
    their order, never depend on the corpus order or the platform.
    """
    candidates = np.flatnonzero(scores > 0)
    if candidates.size > k:
        values = scores[candidates]
        kth = np.partition(values, candidates.size - k)[candidates.size - k]
        candidates = candidates[values >= kth]  # keeps every document tied with the k-th score
    order = np.lexsort((tiebreak[candidates], -scores[candidates]))
    return candidates[order[:k]]

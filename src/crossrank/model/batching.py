"""Length-sorted batches: pairs of similar length share a batch, so little compute goes to padding."""
from __future__ import annotations

import numpy as np


def length_sorted_batches(lengths: np.ndarray, batch_size: int, max_tokens: int | None = None) -> list[np.ndarray]:
    """Split indices into batches of similar length, longest first.

    A batch holds at most `batch_size` pairs and, when `max_tokens` is given, at most
    `max_tokens` padded tokens (rows x longest row), so short pairs travel in bigger batches.
    Callers restore input order from the returned indices.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, but got {batch_size}")
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    n = len(order)
    while start < n:
        width = int(lengths[order[start]])  # the longest pair of this batch comes first
        size = batch_size
        if max_tokens is not None:
            size = max(1, min(batch_size, max_tokens // max(width, 1)))
        batches.append(order[start : start + size])
        start += size
    return batches

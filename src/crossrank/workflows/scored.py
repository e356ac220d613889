"""Every scorer's scores of one dataset's candidate lists, and the systems a report compares.

The cross-encoder, the first stage and the bi-encoder (its query and passage vectors, from which
its cosine, the fused ranker and dense feedback are computed without another model pass).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass
class Scored:
    """One dataset's candidates with every scorer's scores, query by query."""

    qids: list[str]
    doc_ids: list[list[str]]
    scores: dict[str, list[np.ndarray]]  # scorer name -> per-query scores
    vectors: list[tuple[np.ndarray, np.ndarray]] | None = None  # per query: bi-encoder query vector, passage vectors

    def run(self, values: list[np.ndarray]) -> dict[str, dict[str, float]]:
        return {q: {d: float(s) for d, s in zip(docs, vals)} for q, docs, vals in zip(self.qids, self.doc_ids, values)}


def score_candidates(candidates, model, dense, batch_size: int | None = None, window=None) -> tuple[Scored, float]:
    """Cross-encoder and first-stage scores of candidate lists, with the bi-encoder's vectors; returns pairs/s of the cross-encoder.

    `window` (a `WindowConfig`): the cross-encoder scores windows of long passages; None: truncation."""
    from crossrank.pipeline import ScoringOptions, score

    queries = [c.query for c in candidates]
    texts = [c.texts for c in candidates]
    start = time.perf_counter()
    ce = score(model, candidates, ScoringOptions(batch_size=batch_size, show_progress_bar=True,
                                                     long_passages="truncate" if window is None else "window", window=window))
    seconds = time.perf_counter() - start
    scores = {"cross_encoder": ce, "first_stage": [np.asarray(c.first_stage, dtype=np.float64) for c in candidates]}
    vectors = dense.encode_lists(queries, texts, show_progress=True) if dense is not None else None
    n_pairs = sum(len(t) for t in texts)
    return Scored([c.query_id for c in candidates], [c.doc_ids for c in candidates], scores, vectors), n_pairs / max(seconds, 1e-9)


def fused(scored: Scored, weights, feedback=None) -> list[np.ndarray]:
    from crossrank.model.fusion import fuse_lists

    return fuse_lists(weights, scored.scores["cross_encoder"] if weights.cross_encoder else None,
                      scored.vectors if weights.dense else None, scored.scores["first_stage"] if weights.first_stage else None, feedback)


def tune_fusion(scored: Scored, qrels, min_gain: float):
    """Fusion weights and feedback chosen on held-out queries by nDCG@10, guarded: where no fusion beats
    its best single input by `min_gain`, that input alone (`crossrank.training.fusion_choice`)."""
    from crossrank.training.fusion_choice import choose_fusion

    return choose_fusion(scored.qids, scored.doc_ids, scored.scores["cross_encoder"], scored.vectors, scored.scores["first_stage"],
                         qrels, metric="nDCG@10", min_gain=min_gain)


def dataset_runs(scored: Scored, choice) -> dict[str, dict[str, dict[str, float]]]:
    """The systems reported for one dataset: BM25, the bi-encoder alone, the cross-encoder alone and the fused ranker."""
    runs = {"BM25": scored.run(scored.scores["first_stage"])}
    if scored.vectors is not None:
        runs["bi-encoder"] = scored.run([p @ q for q, p in scored.vectors])
    runs["crossrank cross-encoder"] = scored.run(scored.scores["cross_encoder"])
    if choice is not None:
        runs["crossrank fused"] = scored.run(fused(scored, choice.weights, choice.feedback))
    return runs

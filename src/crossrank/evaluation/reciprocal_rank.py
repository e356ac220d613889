"""Reciprocal rank with the official MS MARCO semantics (``msmarco_passage_eval.py``).

* Every query of the qrels counts: one missing from the run scores 0 (the official script divides
  by the number of qrels queries). trec_eval/ir_measures instead average only over queries present
  in the run, and rank ties differently (ir_measures' RR@k provider), hence this module.
* Queries of the run that are not in the qrels are ignored.
* The ranking is crossrank's `rank_scores` (score desc, ties by doc id desc, as trec_eval).
* Relevant means ``relevance >= rel``; the first relevant doc within the top ``cutoff`` gives ``1/rank``.
"""
from __future__ import annotations

from collections.abc import Mapping

from crossrank.data.ranking import rank_scores


def reciprocal_rank(judged: Mapping[str, int], scores: Mapping[str, float], cutoff: int | None, rel: int) -> float:
    """RR of one query: ``judged`` = ``{docid: relevance}``, ``scores`` = ``{docid: score}``."""
    for rank, (doc_id, _) in enumerate(rank_scores(scores, cutoff), start=1):
        if judged.get(doc_id, 0) >= rel:
            return 1.0 / rank
    return 0.0


def reciprocal_rank_per_query(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]],
                              cutoff: int | None = 10, rel: int = 1) -> dict[str, float]:
    """``{qid: RR}`` for every query of ``qrels`` (0.0 where the run has no result for it)."""
    return {qid: reciprocal_rank(judged, run.get(qid, {}), cutoff, rel) for qid, judged in qrels.items()}

"""The one ranking rule used by crossrank, identical to trec_eval's.

trec_eval ignores the rank column and re-sorts each query's documents by score, descending,
breaking ties by docno DESCENDING in ``strcmp`` order (``comp_sim_docno`` in ``form_res_rels.c``:
``strcmp(ptr2->docno, ptr1->docno)``). It stores scores as C ``float``, so scores equal after
rounding to float32 are ties. We do the same, so the ranks crossrank writes and the RR it computes
agree with what trec_eval/pytrec_eval compute from the same scores. (Python compares str by code
point, which for UTF-8 text is the same order as ``strcmp`` on the bytes.)
"""
from __future__ import annotations

from array import array
from collections.abc import Mapping


def rank_scores(scores: Mapping[str, float], depth: int | None = None) -> list[tuple[str, float]]:
    """``[(doc_id, score), ...]`` best first: score (as float32) descending, then doc_id descending."""
    doc_ids = list(scores)
    values = [float(scores[d]) for d in doc_ids]
    as_f32 = array("f", values).tolist()
    order = sorted(range(len(doc_ids)), key=lambda i: (as_f32[i], doc_ids[i]), reverse=True)
    if depth is not None:
        order = order[:depth]
    return [(doc_ids[i], values[i]) for i in order]

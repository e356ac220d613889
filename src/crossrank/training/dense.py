"""Dense first stage for negative mining: exact search over `crossrank.model.dense.DenseEncoder`
embeddings. The search is exact (numpy matrix products, top-k by `argpartition`), or
faiss' exact inner-product index when asked for and installed. Scores are cosine similarities.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping

import numpy as np

from crossrank.model.dense import DenseEncoder

logger = logging.getLogger(__name__)


def exact_search(query_embeddings: np.ndarray, doc_embeddings: np.ndarray, k: int, chunk_size: int = 1024,
                 backend: str = "numpy") -> tuple[np.ndarray, np.ndarray]:
    """Top-k documents per query by inner product: `(scores, indices)`, each `(n_queries, min(k, n_docs))`,
    best first (equal scores: lower index first).

    `backend="numpy"`: queries in chunks of `chunk_size`, one matrix product each, top-k by
    `argpartition`. `backend="faiss"`: faiss' exact `IndexFlatIP` (only when faiss is installed).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, but got {k}")
    q = np.ascontiguousarray(query_embeddings, dtype=np.float32)
    d = np.ascontiguousarray(doc_embeddings, dtype=np.float32)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise ValueError(f"exact_search expects 2-d embeddings of one width, but got {q.shape} and {d.shape}")
    k = min(k, len(d))
    if backend == "faiss":
        try:
            import faiss
        except ImportError as exc:
            raise ImportError("backend='faiss' needs `pip install faiss-cpu` (or use backend='numpy')") from exc
        index = faiss.IndexFlatIP(d.shape[1])
        index.add(d)
        scores, indices = index.search(q, k)
        return scores, indices.astype(np.int64)
    if backend != "numpy":
        raise ValueError(f"backend must be 'numpy' or 'faiss', but got {backend!r}")
    scores = np.empty((len(q), k), dtype=np.float32)
    indices = np.empty((len(q), k), dtype=np.int64)
    if k == 0:
        return scores, indices
    for start in range(0, len(q), chunk_size):
        sims = q[start : start + chunk_size] @ d.T
        if k < sims.shape[1]:
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(sims.shape[1]), sims.shape).copy()
        top = np.take_along_axis(sims, part, axis=1)
        order = np.lexsort((part, -top), axis=-1)
        indices[start : start + len(sims)] = np.take_along_axis(part, order, axis=1)
        scores[start : start + len(sims)] = np.take_along_axis(top, order, axis=1)
    return scores, indices


def dense_candidates(
    queries: Mapping[str, str],
    collection,
    k: int = 100,
    *,
    qrels: Mapping[str, Mapping[str, int]] | None = None,
    doc_ids: Iterable[str] | None = None,
    encoder: DenseEncoder | None = None,
    model: str | os.PathLike | None = None,
    max_length: int | None = None,
    batch_size: int = 64,
    show_progress: bool | None = None,
    backend: str = "numpy",
) -> dict[str, dict[str, float]]:
    """`{qid: {pid: cosine}}`: each query's `k` nearest passages by the bi-encoder, as a run for `mine_negatives`.

    `collection`: a `Collection` (or any `pid -> text` mapping; with `doc_ids` when it cannot be
    iterated); `doc_ids` restricts the searched corpus. With `qrels`, each query also gets the
    cosine of every judged-relevant passage of the corpus (whatever its rank), and its `k`
    candidates are counted without them -- so after the positives are set aside there are still
    `k`, and margins to the positive can be checked. `encoder` (a `DenseEncoder`) or `model`,
    `max_length`, `batch_size` choose the bi-encoder (default all-MiniLM-L6-v2).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, but got {k}")
    ids = list(collection if doc_ids is None else dict.fromkeys(doc_ids))
    missing = [d for d in ids if d not in collection]
    if missing:
        raise ValueError(f"{len(missing)} doc ids have no passage in the collection, e.g. {missing[0]!r}")
    qids = list(queries)
    if not ids or not qids:
        return {qid: {} for qid in qids}
    if encoder is None:
        encoder = DenseEncoder(model, max_length=max_length, batch_size=batch_size)
    logger.info("embedding %d passages and %d queries with %r", len(ids), len(qids), encoder)
    doc_emb = encoder.encode([collection[d] for d in ids], show_progress=show_progress, desc="Embedding passages")
    query_emb = encoder.encode([queries[q] for q in qids], show_progress=show_progress, desc="Embedding queries")

    position = {d: i for i, d in enumerate(ids)}
    positives = {}
    for qid in qids:
        judged = (qrels or {}).get(qid, {})
        positives[qid] = [position[d] for d, rel in judged.items() if rel > 0 and d in position]
    extra = max((len(p) for p in positives.values()), default=0)
    scores, indices = exact_search(query_emb, doc_emb, k + extra, backend=backend)

    result: dict[str, dict[str, float]] = {}
    for row, qid in enumerate(qids):
        pos = set(positives[qid])
        found: dict[str, float] = {}
        kept = 0
        for score, index in zip(scores[row].tolist(), indices[row].tolist()):
            if index in pos:
                continue
            if kept == k:
                break
            found[ids[index]] = float(score)
            kept += 1
        for index in sorted(pos):
            found[ids[index]] = float(query_emb[row] @ doc_emb[index])
        result[qid] = found
    return result

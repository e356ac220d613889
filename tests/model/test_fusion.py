"""Fusion's dense scores: the bi-encoder's cosine of each query with each of its candidates."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def dense(minilm_dir):
    from crossrank.model.dense import DenseEncoder

    return DenseEncoder(minilm_dir, device="cpu")


def test_dense_scores_are_per_list_cosines(dense, shared_data):
    from crossrank.model.fusion import FusedReranker
    from crossrank.pipeline import from_run

    dl19 = shared_data / "trec-dl19"
    cands = list(from_run(dl19 / "runs" / "run.dl19.bm25.top100.trec", dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", depth=6))[:3]
    queries = [c.query for c in cands] + [cands[0].query]  # a repeated query, and lists of unequal length
    lists = [c.texts for c in cands] + [cands[0].texts[:2]]
    got = FusedReranker(None, dense).dense_scores(queries, lists)
    assert [len(g) for g in got] == [6, 6, 6, 2]
    for query, texts, scores in zip(queries, lists, got):
        expected = dense.encode(texts) @ dense.encode([query])[0]
        np.testing.assert_allclose(scores, expected, atol=1e-5)
    np.testing.assert_allclose(got[3], got[0][:2], atol=1e-6)
    assert np.std(np.concatenate(got)) > 0.02  # real, varied similarities

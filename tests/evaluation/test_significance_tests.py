from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from crossrank.evaluation import compare, paired_t_test, randomization_test


def test_randomization_test_exact_small_case():
    a = np.zeros(3)
    b = np.array([1.0, 1.0, 1.0])
    # only the all-same-sign flips (2 of 8) reach |mean| = 1: p -> 2/8 = 0.25
    p = randomization_test(a, b, n_permutations=20000, seed=1)
    assert p == pytest.approx(0.25, abs=0.01)
    assert randomization_test(a, b, 1000, seed=5) == randomization_test(a, b, 1000, seed=5)
    assert randomization_test(a, a, 100) == 1.0
    with pytest.raises(ValueError):
        randomization_test(a, b, 0)


def test_paired_t_test_matches_scipy_and_degenerate_cases():
    rng = np.random.default_rng(0)
    a, b = rng.random(30), rng.random(30)
    assert paired_t_test(a, b) == pytest.approx(stats.ttest_rel(b, a).pvalue)
    assert paired_t_test(a, a) == 1.0


def test_compare_uses_same_query_set():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
    run_a = {"q1": {"a": 1.0, "x": 2.0}, "q2": {"b": 1.0}}
    run_b = {"q1": {"a": 3.0, "x": 2.0}, "q3": {"c": 1.0}}
    result = compare(qrels, run_a, run_b, ["RR@10", "AP"], n_permutations=500)
    rr = result["RR@10"]
    assert rr.n_queries == 3 and rr.mean_a == pytest.approx(1.5 / 3) and rr.mean_b == pytest.approx(2 / 3)
    assert rr.diff == pytest.approx(rr.mean_b - rr.mean_a)
    ap = result["AP"]  # queries in qrels and in either run; missing -> 0 for that run
    assert ap.n_queries == 3 and ap.mean_a == pytest.approx(1.5 / 3)
    assert 0 < ap.randomization_p <= 1 and 0 <= ap.t_test_p <= 1


def test_compare_dl19_bm25_vs_splade(shared_data):
    dl19 = shared_data / "trec-dl19"
    result = compare(dl19 / "qrels.dl19-passage.txt", dl19 / "runs" / "run.dl19.bm25.top100.trec",
                     dl19 / "runs" / "run.dl19.splade-pp-ed.top100.trec", ["nDCG@10"], relevance_level=2,
                     n_permutations=2000)
    ndcg = result["nDCG@10"]
    assert ndcg.n_queries == 43
    assert ndcg.mean_a == pytest.approx(0.5058, abs=1e-4) and ndcg.mean_b == pytest.approx(0.7308, abs=1e-4)
    assert ndcg.t_test_p < 1e-4 and ndcg.randomization_p < 0.01

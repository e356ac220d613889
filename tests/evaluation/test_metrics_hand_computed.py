from __future__ import annotations

import math

import pytest

from crossrank.evaluation import evaluate, evaluate_per_query, reciprocal_rank


def _ranked(doc_ids):
    """Scores giving exactly this order (first = best)."""
    return {d: float(len(doc_ids) - i) for i, d in enumerate(doc_ids)}


QRELS = {
    "q1": {"r1": 1},
    "q2": {"r2": 1},
    "q3": {"r3": 1},  # absent from the run
}
RUN = {
    "q1": _ranked(["n1", "n2", "r1", "n3"]),  # relevant at rank 3
    "q2": _ranked([f"n{i}" for i in range(10)] + ["r2"]),  # relevant at rank 11
    "q9": _ranked(["x"]),  # not in qrels: ignored
}


def test_rr_at_10_official_semantics():
    per_query = evaluate_per_query(QRELS, RUN, ["RR@10"])
    assert per_query == {"q1": {"RR@10": pytest.approx(1 / 3)}, "q2": {"RR@10": 0.0}, "q3": {"RR@10": 0.0}}
    # MS MARCO: divided by the 3 qrels queries, q3 counts 0, q9 ignored
    assert evaluate(QRELS, RUN, ["RR@10", "MRR@10"]) == {"RR@10": pytest.approx(1 / 9), "MRR@10": pytest.approx(1 / 9)}
    assert evaluate(QRELS, RUN, ["RR"]) == {"RR": pytest.approx((1 / 3 + 1 / 11) / 3)}


def test_other_measures_average_over_queries_in_run_and_qrels():
    # trec_eval semantics: q3 (not in run) is not averaged; q1 AP = 1/3, q2 AP = 1/11
    assert evaluate(QRELS, RUN, ["AP"]) == {"AP": pytest.approx((1 / 3 + 1 / 11) / 2)}
    assert set(evaluate_per_query(QRELS, RUN, ["AP"])) == {"q1", "q2"}


GRADED = {"q": {"d1": 3, "d2": 0, "d3": 2, "d4": 1}}
GRADED_RUN = {"q": _ranked(["d1", "d2", "d3", "d5"])}


def test_ndcg_hand_value():
    dcg = 3 / math.log2(2) + 0 + 2 / math.log2(4)
    ideal = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert evaluate(GRADED, GRADED_RUN, ["nDCG@10"])["nDCG@10"] == pytest.approx(dcg / ideal, abs=1e-12)
    assert dcg / ideal == pytest.approx(0.840008, abs=1e-6)


def test_ap_hand_value():
    # relevant (grade >= 1): d1, d3, d4; retrieved at ranks 1 and 3; d4 never retrieved
    assert evaluate(GRADED, GRADED_RUN, ["AP"])["AP"] == pytest.approx((1 / 1 + 2 / 3) / 3)


def test_relevance_level_two_on_graded_qrels():
    qrels = {"q": {"a": 1, "b": 2, "c": 0}}
    run = {"q": _ranked(["a", "b", "c"])}
    level1 = evaluate(qrels, run, ["RR@10", "AP", "R@2", "P@1", "nDCG@3"], relevance_level=1)
    level2 = evaluate(qrels, run, ["RR@10", "AP", "R@2", "P@1", "nDCG@3"], relevance_level=2)
    assert level1["RR@10"] == 1.0 and level2["RR@10"] == 0.5
    assert level1["AP"] == pytest.approx(1.0) and level2["AP"] == pytest.approx(0.5)
    assert level1["P@1"] == 1.0 and level2["P@1"] == 0.0
    assert level2["R@2"] == 1.0
    assert level1["nDCG@3"] == level2["nDCG@3"]  # nDCG uses the grades whatever the level
    # an explicit rel= in the name wins over relevance_level
    assert evaluate(qrels, run, ["AP(rel=1)"], relevance_level=2)["AP(rel=1)"] == pytest.approx(1.0)


def test_metric_names_kept_as_given_and_errors():
    result = evaluate(QRELS, RUN, ["nDCG@10", "MRR@10", "R@100"])
    assert list(result) == ["nDCG@10", "MRR@10", "R@100"]
    with pytest.raises(ValueError, match="unknown metric 'FOO@10'"):
        evaluate(QRELS, RUN, ["FOO@10"])
    with pytest.raises(ValueError, match="unknown metric 'nDCG@x'"):
        evaluate(QRELS, RUN, "nDCG@x")
    with pytest.raises(ValueError, match="no query of the run is in the qrels"):
        evaluate(QRELS, {"zz": {"a": 1.0}}, ["AP"])


def test_reciprocal_rank_single_query():
    assert reciprocal_rank({"a": 1}, {"a": 1.0, "b": 2.0}, cutoff=1, rel=1) == 0.0
    assert reciprocal_rank({"a": 1}, {"a": 1.0, "b": 2.0}, cutoff=2, rel=1) == 0.5
    assert reciprocal_rank({"a": 1}, {}, cutoff=10, rel=1) == 0.0

"""choose_fusion: each input alone against the fused grid, the min_gain guard, ties, checked inputs.

Real DL19 inputs (the bi-encoder + BM25, a noise cross-encoder beside them) are in tests/model/test_fusion.py,
beside the fixture that embeds them once.
"""
from __future__ import annotations

import numpy as np
import pytest

from crossrank.evaluation import evaluate
from crossrank.model.fusion import Feedback, FusionChoice, FusionWeights, fuse_lists
from crossrank.training.fusion_choice import MIN_GAIN, choose_fusion


def unit_vectors(cosines):
    """A (1, 0) query and passages whose cosines with it are `cosines`."""
    c = np.asarray(cosines, dtype=np.float64)
    return np.array([1.0, 0.0]), np.stack([c, np.sqrt(1 - c ** 2)], axis=1)


# Two queries of three passages, one relevant each (b, then e), ranked second by the cross-encoder and
# by the bi-encoder -- each wrong about a different passage -- and last by the first stage: RR 1/2, 1/2
# and 1/3 alone. In q1, z(ce) = (1.069, 0.267, -1.336), z(dense) = (-1.336, 0.267, 1.069): their sum
# (-0.267, 0.535, -0.267) puts b on top (q2 is its mirror), so CE 1 + dense 1 ranks both right: RR 1.
# CE + first stage puts b and e last (1/3), dense + first stage second (1/2), all three last (1/3).
HAND = {
    "qids": ["q1", "q2"],
    "doc_ids": [["a", "b", "c"], ["d", "e", "f"]],
    "cross_encoder": [np.array([3.0, 2.0, 0.0]), np.array([0.0, 2.0, 3.0])],
    "vectors": [unit_vectors([0.0, 0.4, 0.6]), unit_vectors([0.6, 0.4, 0.0])],  # cosines proportional to (0, 2, 3), (3, 2, 0)
    "first_stage": [np.array([1.0, 0.0, 2.0]), np.array([2.0, 0.0, 1.0])],
    "qrels": {"q1": {"b": 1}, "q2": {"e": 1}, "q3": {"x": 1}},  # q3 is not held out: not counted
}
HAND_GRID = {"metric": "RR@10", "feedback_options": [Feedback(0)], "ce_grid": (0, 1), "dense_grid": (0, 1), "stage_grid": (0, 1)}


def choose(data=HAND, **kwargs):
    return choose_fusion(data["qids"], data["doc_ids"], data["cross_encoder"], data["vectors"], data["first_stage"], data["qrels"],
                         **{**HAND_GRID, **kwargs})


def test_hand_computed_case_fuses_the_cross_encoder_and_the_bi_encoder():
    choice = choose()
    assert choice.inputs == pytest.approx({"cross_encoder": 0.5, "dense": 0.5, "first_stage": 1 / 3})
    assert choice.weights == FusionWeights(cross_encoder=1.0, dense=1.0, first_stage=0.0) and choice.feedback == Feedback(0)
    assert choice.value == choice.best_fused_value == 1.0 and choice.fused
    assert (choice.metric, choice.n_queries, choice.min_gain) == ("RR@10", 2, MIN_GAIN)
    # the tie between the two inputs at 0.5 goes to the cheaper one, the bi-encoder
    assert choice.reason == "fused 1.0000 beats the best single input (bi-encoder 0.5000) by 0.5000 (RR@10 on 2 held-out queries)"
    # weights 3 and 3 rank as 1 and 1: the smaller are kept; 1 and 3 (either way) put b and e second
    assert choose(ce_grid=(0, 1, 3), dense_grid=(0, 1, 3)).weights == FusionWeights(1.0, 1.0, 0.0)


def test_a_gain_within_min_gain_keeps_the_single_input():
    choice = choose(min_gain=0.6)
    assert choice.weights == FusionWeights(cross_encoder=0.0, dense=1.0, first_stage=0.0) and not choice.fused
    assert (choice.value, choice.best_fused_value) == (0.5, 1.0)
    assert choice.reason == ("fused 1.0000 does not beat the bi-encoder alone (0.5000) by more than 0.6: "
                             "using the bi-encoder alone (RR@10 on 2 held-out queries)")
    assert choose(min_gain=0.5).weights == FusionWeights(0.0, 1.0, 0.0)  # "more than": a gain of exactly min_gain is not enough


def test_a_perfect_input_is_not_fused_with_anything():
    """The first stage ranks b and e first: no fused setting can beat it, a tie keeps it alone."""
    data = {**HAND, "first_stage": [np.array([0.0, 5.0, 1.0]), np.array([0.0, 5.0, 1.0])]}
    choice = choose(data, feedback_options=(Feedback(0), Feedback(2, 1.0)), ce_grid=(0, 0.5, 1), dense_grid=(0, 1, 2), stage_grid=(0, 1, 2))
    assert choice.weights == FusionWeights(cross_encoder=0.0, dense=0.0, first_stage=1.0) and choice.feedback == Feedback(0)
    assert choice.value == choice.best_fused_value == 1.0
    assert choice.reason.startswith("fused 1.0000 does not beat the first stage alone (1.0000) by more than 0.002")


def test_only_one_input_is_used_alone_with_feedback_when_it_helps():
    data = {**HAND, "cross_encoder": None, "first_stage": None}
    choice = choose(data, feedback_options=(Feedback(0),))
    assert choice.weights == FusionWeights(0.0, 1.0, 0.0) and choice.best_fused_value is None
    assert choice.reason == "only the bi-encoder was given: using it alone, 0.5000 (RR@10 on 2 held-out queries)"


def synthetic(seed: int, n_queries: int = 40, n_docs: int = 20):
    """Queries with graded passages: a bi-encoder and a first stage that follow the grades noisily, a cross-encoder of pure noise."""
    rng = np.random.default_rng(seed)
    qids = [f"q{i}" for i in range(n_queries)]
    doc_ids = [[f"{q}d{j}" for j in range(n_docs)] for q in qids]
    grades = [rng.choice([0, 0, 0, 1, 2], size=n_docs) for _ in qids]
    vectors = []
    for g in grades:
        q = rng.normal(size=8)
        q /= np.linalg.norm(q)
        p = 0.6 * g[:, None] * q + rng.normal(size=(n_docs, 8))
        vectors.append((q.astype(np.float32), (p / np.linalg.norm(p, axis=1, keepdims=True)).astype(np.float32)))
    stage = [g + rng.normal(scale=1.5, size=n_docs) for g in grades]
    noise = [rng.normal(size=n_docs) for _ in qids]
    qrels = {q: {d: int(x) for d, x in zip(docs, g)} for q, docs, g in zip(qids, doc_ids, grades)}
    return {"qids": qids, "doc_ids": doc_ids, "cross_encoder": noise, "vectors": vectors, "first_stage": stage, "qrels": qrels}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_choice_never_scores_below_an_input_and_its_value_is_its_settings(seed):
    data = synthetic(seed)
    choice = choose_fusion(data["qids"], data["doc_ids"], data["cross_encoder"], data["vectors"], data["first_stage"], data["qrels"])
    assert set(choice.inputs) == {"cross_encoder", "dense", "first_stage"} and choice.n_queries == 40
    assert choice.value >= max(choice.inputs.values())
    assert not choice.fused or choice.value > max(choice.inputs.values()) + MIN_GAIN
    w = choice.weights
    scores = fuse_lists(w, data["cross_encoder"] if w.cross_encoder else None, data["vectors"] if w.dense else None,
                        data["first_stage"] if w.first_stage else None, choice.feedback)
    run = {q: dict(zip(docs, map(float, s))) for q, docs, s in zip(data["qids"], data["doc_ids"], scores)}
    assert evaluate(data["qrels"], run, metrics=["nDCG@10"])["nDCG@10"] == pytest.approx(choice.value, abs=1e-12)
    assert choice.inputs["cross_encoder"] < min(choice.inputs["dense"], choice.inputs["first_stage"])  # noise is noise
    strict = choose_fusion(data["qids"], data["doc_ids"], data["cross_encoder"], data["vectors"], data["first_stage"], data["qrels"],
                           min_gain=1.0)
    best = max(strict.inputs, key=strict.inputs.get)
    assert strict.weights.nonzero() == [best] and strict.value == strict.inputs[best] and "does not beat" in strict.reason


def test_a_choice_round_trips_through_its_record():
    choice = choose()
    back = FusionChoice.from_record(choice.weights, choice.feedback, choice.record())
    assert back == choice
    with pytest.raises(ValueError, match="'chosen_on' expects the keys"):
        FusionChoice.from_record(choice.weights, choice.feedback, {"reason": "x"})


def _bad(key, value):
    return {**HAND, key: value}


@pytest.mark.parametrize("data, kwargs, message", [
    (_bad("qids", []), {}, "a non-empty list of query ids"),
    (_bad("qids", "q1"), {}, "a non-empty list of query ids"),
    (_bad("qids", ["q1", "q1"]), {}, "distinct string query ids"),
    (_bad("doc_ids", [["a", "b", "c"]]), {}, r"one doc id list per query \(2\)"),
    (_bad("doc_ids", [["a", "b", "b"], ["d", "e", "f"]]), {}, "distinct doc ids in query q1's list"),
    (_bad("doc_ids", ["abc", ["d", "e", "f"]]), {}, "a list of string doc ids for query q1"),
    (_bad("cross_encoder", [np.ones(3)]), {}, r"cross_encoder as a list of one score array per query \(2\)"),
    (_bad("cross_encoder", [np.ones(3), np.ones(2)]), {}, r"cross_encoder scores of shape \(3,\) for query q2"),
    (_bad("first_stage", [np.ones(3), np.array([1.0, np.nan, 0.0])]), {}, "finite first_stage scores"),
    (_bad("vectors", [unit_vectors([0.1, 0.2, 0.3]), (np.ones(2), np.ones((2, 2)))]), {}, r"a \(3, dim\) passage matrix for query q2"),
    (_bad("vectors", [np.ones(2), np.ones(2)]), {}, "a .query vector, passage matrix. pair for query q1"),
    ({**HAND, "cross_encoder": None, "vectors": None, "first_stage": None}, {}, "at least one input"),
    (_bad("qrels", {"q9": {"x": 1}}), {}, "none of the 2 queries in qrels"),
    (HAND, {"dense_grid": (0, -1)}, "dense_grid weights to be finite numbers >= 0"),
    (HAND, {"ce_grid": ()}, "ce_grid to be a non-empty sequence"),
    (HAND, {"feedback_options": Feedback(3)}, "non-empty sequence of Feedback"),
    (HAND, {"feedback_options": [(3, 1.0)]}, "Feedback settings only"),
    (HAND, {"metric": ["nDCG@10"]}, "one measure's name"),
    (HAND, {"relevance_level": 1.5}, "relevance_level to be an integer"),
    (HAND, {"min_gain": -0.01}, "min_gain to be a finite number >= 0"),
])
def test_bad_inputs_are_refused_before_any_work(data, kwargs, message):
    with pytest.raises(ValueError, match=f"^choose_fusion expects .*{message}"):
        choose(data, **kwargs)


def test_an_unknown_metric_is_named():
    with pytest.raises(ValueError, match="unknown metric 'nDGC@10'"):
        choose(metric="nDGC@10")

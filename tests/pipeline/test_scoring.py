"""The one scoring path (`crossrank.pipeline.score`) on real DL19 candidates, and each ranker through it:
the cross-encoder (truncated and windowed), the fused reranker, the training evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from crossrank import CrossEncoder
from crossrank.data.candidates import Candidates, to_run
from crossrank.evaluation import evaluate
from crossrank.model.fusion import Feedback, FusedReranker, FusionWeights, fuse_lists
from crossrank.model.windows import WindowConfig
from crossrank.pipeline import Ranker, ScoringOptions, from_run, score, score_run


@pytest.fixture(scope="module")
def cands(data_dir):
    dl19 = data_dir / "trec-dl19"
    lists = list(from_run(dl19 / "runs" / "run.dl19.bm25.top100.trec", dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", 12))
    return lists[:3]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return CrossEncoder(tiny_model_dir)


def _flat_reference(model, cands, **kw):
    """The scores pair by pair from predict: what every caller computed by hand before."""
    return [model.predict([(c.query, t) for t in c.texts], **kw) for c in cands]


def test_cross_encoder_scores_are_predict_per_query(tiny, cands):
    assert isinstance(tiny, Ranker)
    got = score(tiny, cands)
    assert [len(s) for s in got] == [len(c) for c in cands] == [12, 12, 12]
    for g, e in zip(got, _flat_reference(tiny, cands)):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    raw = score(tiny, cands, ScoringOptions(activation="identity", max_tokens_per_batch=256, batch_size=5))
    for g, e in zip(raw, _flat_reference(tiny, cands, activation="identity")):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)
    run = score_run(tiny, cands)
    assert list(run) == [c.query_id for c in cands] and list(run[cands[0].query_id]) == cands[0].doc_ids
    assert run[cands[1].query_id][cands[1].doc_ids[4]] == pytest.approx(float(got[1][4]))


def test_windows_go_through_the_options(tiny_model_dir, cands):
    model = CrossEncoder(tiny_model_dir, max_length=32)  # DL19 passages do not fit: windows are cut
    window = WindowConfig(stride=8, aggregate="mean")
    got = score(model, cands, ScoringOptions(long_passages="window", window=window))
    for g, e in zip(got, _flat_reference(model, cands, long_passages="window", window=window)):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    truncated = score(model, cands)
    assert not all(np.allclose(a, b) for a, b in zip(got, truncated))


def test_fused_reranker_scores_are_its_fusion_of_the_parts(tiny, minilm_dir, cands):
    from crossrank.model.dense import DenseEncoder

    dense = DenseEncoder(minilm_dir, device="cpu")
    weights, feedback = FusionWeights(cross_encoder=1.0, dense=0.7, first_stage=0.3), Feedback(depth=2, weight=1.0)
    fused = FusedReranker(tiny, dense, weights, feedback)
    got = score(fused, cands)
    expected = fuse_lists(weights, score(tiny, cands), dense.encode_lists([c.query for c in cands], [c.texts for c in cands]),
                          [np.asarray(c.first_stage, dtype=np.float64) for c in cands], feedback)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=1e-6)
    no_stage = [Candidates(c.query_id, c.query, c.doc_ids, c.texts, [None] * len(c)) for c in cands]
    with pytest.raises(ValueError, match="first-stage scores for every candidate"):
        score(fused, no_stage)


def test_the_evaluator_measures_the_run_of_the_scoring_path(tiny, cands, data_dir):
    from crossrank.data import load_qrels
    from crossrank.training.evaluator import RerankingEvaluator

    qrels = load_qrels(data_dir / "trec-dl19" / "qrels.dl19-passage.txt")
    ev = RerankingEvaluator("dl19", {c.query_id: c.query for c in cands}, {c.query_id: c.doc_ids for c in cands},
                            {d: t for c in cands for d, t in zip(c.doc_ids, c.texts)}, qrels, metrics=("nDCG@10",), relevance_level=2)
    assert [c.texts for c in ev.candidate_lists()] == [c.texts for c in cands]
    expected = evaluate({q: qrels[q] for q in ev.candidates}, score_run(tiny, cands), ["nDCG@10"], relevance_level=2)
    assert ev(tiny) == pytest.approx(expected)


class _Short:
    """A ranker that loses the last candidate of every list."""

    def score_candidates(self, candidates, options=None):
        return [np.zeros(len(c) - 1) for c in candidates]


def test_a_ranker_that_returns_the_wrong_shape_fails_loudly(cands):
    with pytest.raises(ValueError, match="one score per candidate.*other lengths for queries"):
        score(_Short(), cands)
    with pytest.raises(TypeError, match="score expects a ranker with score_candidates"):
        score(object(), cands)
    assert score(_Short(), []) == []


def test_candidates_and_runs_keep_their_shape():
    with pytest.raises(ValueError, match="as many texts and first-stage scores as doc ids"):
        Candidates("q1", "a query", ["d1", "d2"], ["only one text"], [1.0, 0.5])
    c = Candidates("q1", "a query", ["d1", "d2"], ["t1", "t2"], [None, None])
    assert to_run([c], [np.array([0.25, 0.75])]) == {"q1": {"d1": 0.25, "d2": 0.75}}
    with pytest.raises(ValueError, match="expects 2 scores for query 'q1', but got 1"):
        to_run([c], [[0.1]])

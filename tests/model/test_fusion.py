"""Fusion: the bi-encoder's cosines per list, Rocchio feedback on its query vector, fused lists, fusion.json."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def dense(minilm_dir):
    from crossrank.model.dense import DenseEncoder

    return DenseEncoder(minilm_dir, device="cpu")


def test_dense_scores_are_per_list_cosines(dense, shared_data):
    from crossrank.pipeline import from_run

    dl19 = shared_data / "trec-dl19"
    cands = list(from_run(dl19 / "runs" / "run.dl19.bm25.top100.trec", dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", depth=6))[:3]
    queries = [c.query for c in cands] + [cands[0].query]  # a repeated query, and lists of unequal length
    lists = [c.texts for c in cands] + [cands[0].texts[:2]]
    got = [passages @ query for query, passages in dense.encode_lists(queries, lists)]
    assert [len(g) for g in got] == [6, 6, 6, 2]
    for query, texts, scores in zip(queries, lists, got):
        expected = dense.encode(texts) @ dense.encode([query])[0]
        np.testing.assert_allclose(scores, expected, atol=1e-5)
    np.testing.assert_allclose(got[3], got[0][:2], atol=1e-6)
    assert np.std(np.concatenate(got)) > 0.02  # real, varied similarities


def test_rocchio_moves_the_query_toward_the_top_passages():
    from crossrank.model.fusion import rocchio

    query = np.array([1.0, 0.0])
    passages = np.array([[0.0, 1.0], [0.6, 0.8], [1.0, 0.0]])
    ranking = np.array([3.0, 2.0, 1.0])  # passages 0 and 1 on top
    got = rocchio(query, passages, ranking, depth=2, weight=1.0)
    moved = query + (passages[0] + passages[1]) / 2  # (1.3, 0.9)
    moved /= np.linalg.norm(moved)
    np.testing.assert_allclose(got, passages @ moved, atol=1e-6)
    assert got[0] > 0.5 > passages[0] @ query  # the top passage gained from the feedback
    np.testing.assert_allclose(rocchio(query, passages, ranking, depth=1, weight=0.0), passages @ query, atol=1e-7)
    np.testing.assert_allclose(rocchio(query, passages, ranking, depth=10, weight=1.0),
                               rocchio(query, passages, ranking, depth=3, weight=1.0), atol=1e-7)  # depth past the list: all of it
    assert rocchio(query, np.zeros((0, 2)), np.zeros(0), depth=3, weight=1.0).shape == (0,)


@pytest.mark.parametrize("args, message", [
    ((np.ones(2), np.ones((3, 4)), np.ones(3), 3, 1.0), r"rocchio expects a \(dim,\) query"),
    ((np.ones(2), np.ones((3, 2)), np.ones(2), 3, 1.0), "one ranking score per passage"),
    ((np.ones(2), np.ones((3, 2)), np.ones(3), 0, 1.0), "depth >= 1"),
])
def test_rocchio_refuses_bad_shapes(args, message):
    from crossrank.model.fusion import rocchio

    with pytest.raises(ValueError, match=message):
        rocchio(*args)


@pytest.mark.parametrize("kwargs, message", [({"depth": -1}, "depth to be an integer >= 0"), ({"depth": 2.5}, "depth to be an integer"),
                                             ({"weight": float("nan")}, "finite weight"), ({"weight": -1.0}, "weight >= 0")])
def test_feedback_settings_are_checked(kwargs, message):
    from crossrank.model.fusion import Feedback

    with pytest.raises(ValueError, match=message):
        Feedback(**kwargs)


def test_fuse_lists_feeds_back_from_the_first_fused_ranking():
    from crossrank.model.fusion import Feedback, FusionWeights, fuse, fuse_lists, rocchio

    rng = np.random.default_rng(0)
    weights = FusionWeights(cross_encoder=1.0, dense=2.0, first_stage=0.5)
    ce = [rng.normal(size=n) for n in (5, 7)]
    stage = [rng.normal(size=n) for n in (5, 7)]
    vectors = []
    for n in (5, 7):
        q, p = rng.normal(size=4), rng.normal(size=(n, 4))
        vectors.append((q / np.linalg.norm(q), p / np.linalg.norm(p, axis=1, keepdims=True)))
    plain = fuse_lists(weights, ce, vectors, stage)
    for got, c, (q, p), s in zip(plain, ce, vectors, stage):
        np.testing.assert_allclose(got, fuse(weights, c, p @ q, s), atol=1e-6)
    fed = fuse_lists(weights, ce, vectors, stage, Feedback(depth=2, weight=1.0))
    for got, first, c, (q, p), s in zip(fed, plain, ce, vectors, stage):
        np.testing.assert_allclose(got, fuse(weights, c, rocchio(q, p, first, 2, 1.0), s), atol=1e-6)
    assert not np.allclose(fed[1], plain[1])
    with pytest.raises(ValueError, match="one entry per query"):
        fuse_lists(weights, ce, vectors[:1], stage)


def test_feedback_raises_dl19_ndcg_of_dense_plus_bm25(dense, shared_data):
    """Real data: the bi-encoder + BM25 over DL19's BM25 top-30; feedback from the fused top 3 helps."""
    from crossrank.data import load_qrels
    from crossrank.evaluation import evaluate
    from crossrank.model.fusion import Feedback, FusionWeights, fuse_lists
    from crossrank.pipeline import from_run

    dl19 = shared_data / "trec-dl19"
    qrels = load_qrels(dl19 / "qrels.dl19-passage.txt")
    cands = [c for c in from_run(dl19 / "runs" / "run.dl19.bm25.top100.trec", dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", depth=30)
             if c.query_id in qrels]
    vectors = dense.encode_lists([c.query for c in cands], [c.texts for c in cands])
    weights = FusionWeights(cross_encoder=0.0, dense=1.0, first_stage=0.25)
    args = (weights, [np.zeros(len(c.doc_ids)) for c in cands], vectors, [np.asarray(c.first_stage) for c in cands])

    def ndcg(scores):
        run = {c.query_id: dict(zip(c.doc_ids, map(float, s))) for c, s in zip(cands, scores)}
        return evaluate(qrels, run, metrics=["nDCG@10"], relevance_level=2)["nDCG@10"]

    without, with_feedback = ndcg(fuse_lists(*args)), ndcg(fuse_lists(*args, Feedback(depth=3, weight=1.0)))
    assert without == pytest.approx(0.6187, abs=2e-3)
    assert with_feedback == pytest.approx(0.6278, abs=2e-3)


def test_feedback_is_saved_beside_the_model_and_old_files_load(tiny_model_dir, dense, tmp_path):
    import json
    import shutil

    from crossrank.model.fusion import FUSION_FILE, Feedback, FusedReranker, FusionWeights

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    weights = FusionWeights(cross_encoder=1.0, dense=4.0, first_stage=1.0)
    FusedReranker(None, dense, weights, Feedback(depth=3, weight=0.5)).save_weights(folder)
    loaded = FusedReranker.load(folder)
    assert loaded.weights == weights and loaded.feedback == Feedback(depth=3, weight=0.5)
    spec = json.loads((folder / FUSION_FILE).read_text())
    del spec["feedback"]  # written before feedback existed
    (folder / FUSION_FILE).write_text(json.dumps(spec))
    assert FusedReranker.load(folder).feedback == Feedback(depth=0)
    with pytest.raises(ValueError, match="dense weight is 0"):
        FusedReranker(None, dense, FusionWeights(), Feedback(depth=3))

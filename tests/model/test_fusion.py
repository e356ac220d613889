"""Fusion: the bi-encoder's cosines per list, Rocchio feedback on its query vector, fused lists, fusion.json;
weights chosen by `choose_fusion` on real DL19 inputs, and a zero cross-encoder weight that skips the cross-encoder."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def dense(minilm_dir):
    from crossrank.model.dense import DenseEncoder

    return DenseEncoder(minilm_dir, device="cpu")


@pytest.fixture(scope="module")
def dl19_top30(dense, shared_data):
    """Real inputs: DL19's judged queries, their BM25 top-30, the bi-encoder's vectors, the qrels."""
    from crossrank.data import load_qrels
    from crossrank.pipeline import from_run

    dl19 = shared_data / "trec-dl19"
    qrels = load_qrels(dl19 / "qrels.dl19-passage.txt")
    cands = [c for c in from_run(dl19 / "runs" / "run.dl19.bm25.top100.trec", dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", depth=30)
             if c.query_id in qrels]
    return cands, dense.encode_lists([c.query for c in cands], [c.texts for c in cands]), qrels


def dl19_ndcg(cands, qrels, scores) -> float:
    from crossrank.evaluation import evaluate

    run = {c.query_id: dict(zip(c.doc_ids, map(float, s))) for c, s in zip(cands, scores)}
    return evaluate(qrels, run, metrics=["nDCG@10"], relevance_level=2)["nDCG@10"]


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


def test_feedback_raises_dl19_ndcg_of_dense_plus_bm25(dl19_top30):
    """Real data: the bi-encoder + BM25 over DL19's BM25 top-30; feedback from the fused top 3 helps."""
    from crossrank.model.fusion import Feedback, FusionWeights, fuse_lists

    cands, vectors, qrels = dl19_top30
    weights = FusionWeights(cross_encoder=0.0, dense=1.0, first_stage=0.25)
    args = (weights, [np.zeros(len(c.doc_ids)) for c in cands], vectors, [np.asarray(c.first_stage) for c in cands])
    without, with_feedback = dl19_ndcg(cands, qrels, fuse_lists(*args)), dl19_ndcg(cands, qrels, fuse_lists(*args, Feedback(depth=3, weight=1.0)))
    assert without == pytest.approx(0.6187, abs=2e-3)
    assert with_feedback == pytest.approx(0.6278, abs=2e-3)
    no_ce = fuse_lists(weights, None, vectors, [np.asarray(c.first_stage) for c in cands], Feedback(depth=3, weight=1.0))
    for a, b in zip(no_ce, fuse_lists(*args, Feedback(depth=3, weight=1.0))):  # a zero weight needs no scores at all
        np.testing.assert_array_equal(a, b)


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


def test_weights_may_leave_out_the_cross_encoder_but_not_every_scorer():
    from crossrank.model.fusion import FusionWeights, fuse, fuse_lists, znorm

    with pytest.raises(ValueError, match="at least one non-zero weight"):
        FusionWeights(cross_encoder=0.0, dense=0.0, first_stage=0.0)
    weights = FusionWeights(cross_encoder=0.0, dense=2.0, first_stage=1.0)
    assert weights.nonzero() == ["dense", "first_stage"]
    dense_scores, stage = np.array([0.1, 0.5, 0.3]), np.array([3.0, 1.0, 2.0])
    np.testing.assert_allclose(fuse(weights, None, dense_scores, stage), 2 * znorm(dense_scores) + znorm(stage), atol=1e-6)
    with pytest.raises(ValueError, match="cross_encoder=1.0 needs cross_encoder scores"):
        fuse(FusionWeights(), None)
    with pytest.raises(ValueError, match="one score per candidate from every weighted scorer"):
        fuse(weights, None, dense_scores, stage[:2])
    with pytest.raises(ValueError, match="at least one scorer"):
        fuse_lists(weights, None, None, None)


class RaisingCrossEncoder:
    """A stand-in cross-encoder that must not be run."""

    def score_candidates(self, *args, **kwargs):
        raise RuntimeError("the cross-encoder ran")

    rerank_many = predict = score_candidates


def test_a_zero_cross_encoder_weight_never_runs_the_cross_encoder(dense):
    from crossrank.model.fusion import Feedback, FusedReranker, FusionWeights, fuse_lists, znorm

    queries = ["what is a cross encoder", "boiling point of water"]
    lists = [["a cross encoder scores a query and a passage together", "bananas are yellow", "encoders embed text"],
             ["water boils at 100 degrees celsius at sea level", "ice is frozen water"]]
    stage = [[12.0, 3.0, 7.0], [9.0, 8.5]]
    weights, feedback = FusionWeights(cross_encoder=0.0, dense=1.0, first_stage=0.5), Feedback(depth=2, weight=1.0)
    got = FusedReranker(RaisingCrossEncoder(), dense, weights, feedback).rerank_many(queries, lists, first_stage=stage)
    expected = fuse_lists(weights, None, dense.encode_lists(queries, lists), [np.asarray(s) for s in stage], feedback)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=1e-6)
    stage_only = FusedReranker(RaisingCrossEncoder(), None, FusionWeights(0.0, 0.0, 1.0)).rerank_many(queries, lists, first_stage=stage)
    for g, s in zip(stage_only, stage):
        np.testing.assert_allclose(g, znorm(s), atol=1e-6)
    with pytest.raises(RuntimeError, match="the cross-encoder ran"):  # the stand-in does raise when it is asked for scores
        FusedReranker(RaisingCrossEncoder(), None, FusionWeights(1.0, 0.0, 1.0)).rerank_many(queries, lists, first_stage=stage)


def test_cli_rerank_fused_with_a_zero_cross_encoder_weight_skips_it(tiny_model_dir, dense, shared_data, tmp_path, monkeypatch):
    import shutil

    from crossrank.cli.main import main
    from crossrank.data import load_run
    from crossrank.model.cross_encoder import CrossEncoder
    from crossrank.model.fusion import Feedback, FusedReranker, FusionWeights, fuse_lists
    from crossrank.pipeline import from_run

    dl19 = shared_data / "trec-dl19"
    lines = (dl19 / "runs" / "run.dl19.bm25.top100.trec").read_text().splitlines()
    qids = list(dict.fromkeys(line.split()[0] for line in lines))[:2]
    run = tmp_path / "bm25.2q.trec"
    run.write_text("\n".join(line for line in lines if line.split()[0] in qids) + "\n")
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    weights, feedback = FusionWeights(cross_encoder=0.0, dense=1.0, first_stage=0.5), Feedback(depth=3, weight=1.0)
    FusedReranker(None, dense, weights, feedback).save_weights(folder)
    monkeypatch.setattr(CrossEncoder, "score_candidates", RaisingCrossEncoder.score_candidates)
    out = tmp_path / "fused.trec"
    args = ["--run", str(run), "--corpus", str(dl19 / "collection.tsv"), "--queries", str(dl19 / "queries.dl19.tsv"), "--depth", "8"]
    assert main(["rerank", "--model", str(folder), "--fused", *args, "--output", str(out)]) == 0
    got = load_run(out)
    cands = list(from_run(run, dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", 8))
    expected = fuse_lists(weights, None, dense.encode_lists([c.query for c in cands], [c.texts for c in cands]),
                          [np.asarray(c.first_stage, dtype=np.float64) for c in cands], feedback)
    assert set(got) == set(qids)
    for c, scores in zip(cands, expected):
        np.testing.assert_allclose([got[c.query_id][d] for d in c.doc_ids], scores, atol=1e-4)


@pytest.fixture(scope="module")
def dl19_choice(dl19_top30):
    """choose_fusion over DL19's real bi-encoder and BM25 (no cross-encoder), nDCG@10 with grades >= 2 relevant."""
    from crossrank.training.fusion_choice import choose_fusion

    cands, vectors, qrels = dl19_top30
    return choose_fusion([c.query_id for c in cands], [c.doc_ids for c in cands], None, vectors,
                         [np.asarray(c.first_stage) for c in cands], qrels, relevance_level=2)


def test_choose_fusion_fuses_the_real_bi_encoder_and_bm25_on_dl19(dl19_top30, dl19_choice):
    from crossrank.model.fusion import fuse_lists
    from crossrank.training.fusion_choice import MIN_GAIN

    cands, vectors, qrels = dl19_top30
    choice = dl19_choice
    assert len(choice.weights.nonzero()) > 1 and choice.weights.cross_encoder == 0 and choice.fused
    assert choice.inputs == pytest.approx({"dense": 0.6218, "first_stage": 0.5058}, abs=2e-3)  # the bi-encoder with feedback
    assert choice.value > max(choice.inputs.values()) + MIN_GAIN and choice.value == choice.best_fused_value
    assert choice.value == pytest.approx(0.6293, abs=2e-3) and choice.n_queries == 43
    fused = fuse_lists(choice.weights, None, vectors, [np.asarray(c.first_stage) for c in cands], choice.feedback)
    assert dl19_ndcg(cands, qrels, fused) == pytest.approx(choice.value, abs=1e-12)
    assert choice.reason.startswith(f"fused {choice.value:.4f} beats the best single input (bi-encoder 0.62")


def test_choose_fusion_with_a_noise_cross_encoder_never_scores_below_an_input(dl19_top30):
    """A "cross-encoder" of random scores beside the real bi-encoder: the choice never loses to an input on these queries."""
    from crossrank.model.fusion import FusionWeights, fuse_lists
    from crossrank.training.fusion_choice import MIN_GAIN, choose_fusion

    cands, vectors, qrels = dl19_top30
    noise = [np.random.default_rng(0).normal(size=len(c.doc_ids)) for c in cands]
    lists = ([c.query_id for c in cands], [c.doc_ids for c in cands], noise, vectors, None, qrels)
    choice = choose_fusion(*lists, relevance_level=2)
    assert choice.inputs["cross_encoder"] < 0.4 < 0.6 < choice.inputs["dense"]
    assert choice.value >= max(choice.inputs.values())
    assert not choice.fused or choice.value > max(choice.inputs.values()) + MIN_GAIN
    w = choice.weights
    fused = fuse_lists(w, noise if w.cross_encoder else None, vectors if w.dense else None, None, choice.feedback)
    assert dl19_ndcg(cands, qrels, fused) == pytest.approx(choice.value, abs=1e-12)
    # the noise wins a few thousandths here by chance (43 queries); a margin above that keeps the bi-encoder alone
    guarded = choose_fusion(*lists, relevance_level=2, min_gain=0.01)
    assert guarded.weights == FusionWeights(cross_encoder=0.0, dense=1.0, first_stage=0.0) and guarded.feedback.depth == 3
    assert guarded.value == guarded.inputs["dense"] >= max(guarded.inputs.values())
    assert guarded.reason.startswith(f"fused {guarded.best_fused_value:.4f} does not beat the bi-encoder alone (")
    assert "using the bi-encoder alone" in guarded.reason


def test_the_choice_is_recorded_in_fusion_json_and_loads_back(dl19_choice, tiny_model_dir, dense, tmp_path):
    import json
    import shutil
    from dataclasses import asdict

    from crossrank.model.fusion import FUSION_FILE, FusedReranker, FusionWeights

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    choice = dl19_choice
    FusedReranker(None, dense, choice.weights, choice.feedback).save_weights(folder, choice=choice)
    spec = json.loads((folder / FUSION_FILE).read_text())
    assert spec["weights"] == asdict(choice.weights) and spec["feedback"] == asdict(choice.feedback)
    assert spec["chosen_on"] == {"reason": choice.reason, "metric": "nDCG@10", "n_queries": 43, "value": choice.value,
                                 "best_fused_value": choice.best_fused_value, "inputs": choice.inputs, "min_gain": 0.002}
    loaded = FusedReranker.load(folder)
    assert loaded.choice == choice and (loaded.weights, loaded.feedback) == (choice.weights, choice.feedback)
    before = (folder / FUSION_FILE).read_text()
    loaded.save_weights(folder)  # the loaded reranker keeps its record
    assert (folder / FUSION_FILE).read_text() == before
    del spec["chosen_on"]  # written before choose_fusion existed
    (folder / FUSION_FILE).write_text(json.dumps(spec))
    assert FusedReranker.load(folder).choice is None
    (folder / FUSION_FILE).write_text(json.dumps({**spec, "chosen_on": {"reason": "hand-set"}}))
    with pytest.raises(ValueError, match="fusion.json: 'chosen_on' expects the keys"):
        FusedReranker.load(folder)
    with pytest.raises(ValueError, match="the choice to be of its own weights"):
        FusedReranker(None, dense, FusionWeights(1.0, 1.0, 0.0), choice.feedback, choice=choice)
    with pytest.raises(ValueError, match="the choice to be of its own weights"):
        FusedReranker(None, dense, FusionWeights(1.0, 1.0, 0.0)).save_weights(folder, choice=choice)

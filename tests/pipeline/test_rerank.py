"""Reranking runs: output format, agreement with predict, resume after a crash, clear errors."""
from __future__ import annotations

import numpy as np
import pytest

from crossrank import CrossEncoder
from crossrank.cli.main import main
from crossrank.data import load_run
from crossrank.pipeline import RerankConfig, from_rerank_jsonl, from_run, rerank_run


@pytest.fixture(scope="module")
def small_run(dl19_head):
    """The DL19 BM25 run cut to 4 queries, so the tiny model reranks it in a moment."""
    return dl19_head(4)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return CrossEncoder(tiny_model_dir)


def candidates(dl19, run, depth=20):
    return list(from_run(run, dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", depth))


def test_rerank_scores_equal_predict_and_ranks_follow_scores(dl19, small_run, tiny, tmp_path):
    cands = candidates(dl19, small_run)
    out = tmp_path / "reranked.trec"
    stats = rerank_run(tiny, cands, out, RerankConfig(chunk_pairs=30))
    assert stats.queries == 4 and stats.pairs == 80
    run = load_run(out)
    assert set(run) == {c.query_id for c in cands}
    for c in cands:
        expected = tiny.predict([(c.query, t) for t in c.texts])
        got = np.array([run[c.query_id][d] for d in c.doc_ids])
        np.testing.assert_allclose(got, expected, atol=1e-5)
    lines = [line.split() for line in out.read_text().splitlines()]
    for qid in run:
        rows = [r for r in lines if r[0] == qid]
        assert [int(r[3]) for r in rows] == list(range(1, 21))
        scores = [float(r[4]) for r in rows]
        assert scores == sorted(scores, reverse=True)
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.progress"))


class _Crashing:
    """Scores like the model, then dies after `limit` queries, like a killed job."""

    def __init__(self, model, limit):
        self.model, self.limit, self.scored = model, limit, []

    def score_candidates(self, candidates, options=None):
        if len(self.scored) >= self.limit:
            raise KeyboardInterrupt("killed")
        self.scored.extend(c.query for c in candidates)
        return self.model.score_candidates(candidates, options)


def test_killed_job_resumes_without_rescoring(dl19, small_run, tiny, tmp_path):
    cands = candidates(dl19, small_run)
    reference = tmp_path / "reference.trec"
    rerank_run(tiny, cands, reference, RerankConfig(chunk_pairs=1))
    out = tmp_path / "resumed.trec"
    crashing = _Crashing(tiny, limit=2)
    with pytest.raises(KeyboardInterrupt):
        rerank_run(crashing, cands, out, RerankConfig(chunk_pairs=1))
    assert not out.exists()  # nothing half-written under the final name
    again = _Crashing(tiny, limit=100)
    stats = rerank_run(again, cands, out, RerankConfig(chunk_pairs=1))
    assert stats.skipped_queries == 2 and stats.queries == 2
    assert again.scored == [c.query for c in cands[2:]]  # finished queries were not rescored
    assert out.read_text() == reference.read_text()


def test_torn_partial_write_is_truncated_on_resume(dl19, small_run, tiny, tmp_path):
    cands = candidates(dl19, small_run)
    out = tmp_path / "run.trec"
    with pytest.raises(KeyboardInterrupt):
        rerank_run(_Crashing(tiny, limit=1), cands, out, RerankConfig(chunk_pairs=1))
    partial = out.with_name(out.name + ".partial")
    with partial.open("a") as f:
        f.write("264014 Q0 half-written-line")  # the job died in the middle of a query
    rerank_run(tiny, cands, out, RerankConfig(chunk_pairs=1))
    run = load_run(out)
    assert len(run) == 4 and all(len(docs) == 20 for docs in run.values())


def test_cli_prepare_then_rerank_jsonl_matches_run_input(dl19, small_run, tiny_model_dir, tmp_path):
    jsonl = tmp_path / "rerank.jsonl.gz"
    args = ["--run", str(small_run), "--corpus", str(dl19 / "collection.tsv"), "--queries", str(dl19 / "queries.dl19.tsv"), "--depth", "10"]
    assert main(["prepare", *args, "--output", str(jsonl)]) == 0
    assert len(list(from_rerank_jsonl(jsonl))) == 4
    a, b = tmp_path / "a.trec", tmp_path / "b.msmarco"
    assert main(["rerank", "--model", str(tiny_model_dir), *args, "--output", str(a)]) == 0
    assert main(["rerank", "--model", str(tiny_model_dir), "--input", str(jsonl), "--depth", "10", "--format", "msmarco", "--output", str(b)]) == 0
    run_a = load_run(a)
    ranks_b = load_run(b)  # msmarco runs read back as score = -rank
    for qid, docs in run_a.items():
        assert len(docs) == 10
        order_a = sorted(docs, key=lambda d: -docs[d])
        order_b = sorted(ranks_b[qid], key=lambda d: -ranks_b[qid][d])
        assert order_a == order_b


def test_malformed_run_names_file_and_line_and_writes_nothing(dl19, tiny_model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.trec"
    bad.write_text("264014 Q0 5611210 1 15.78 bm25\n264014 Q0 6641238 two 15.09 bm25\n")
    out = tmp_path / "out.trec"
    code = main(["rerank", "--model", str(tiny_model_dir), "--run", str(bad), "--corpus", str(dl19 / "collection.tsv"),
                 "--queries", str(dl19 / "queries.dl19.tsv"), "--output", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "bad.trec:2" in err and "rank" in err
    assert not out.exists()


def test_missing_inputs_and_unknown_passages_are_clear(dl19, small_run, tmp_path):
    with pytest.raises(ValueError, match="missing --corpus"):
        main(["-v", "prepare", "--run", str(small_run), "--queries", "q.tsv", "--output", str(tmp_path / "x.jsonl")])
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text("1\tonly passage\n")
    with pytest.raises(ValueError, match="is not in"):
        list(from_run(small_run, corpus, dl19 / "queries.dl19.tsv"))


def test_cli_rerank_fused_uses_the_fusion_file_beside_the_model(dl19, small_run, tiny_model_dir, minilm_dir, tmp_path, capsys):
    import shutil

    from crossrank.model.dense import DenseEncoder
    from crossrank.model.fusion import Feedback, FusedReranker, FusionWeights

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    args = ["--run", str(small_run), "--corpus", str(dl19 / "collection.tsv"), "--queries", str(dl19 / "queries.dl19.tsv"), "--depth", "10"]
    assert main(["rerank", "--model", str(folder), "--fused", *args, "--output", str(tmp_path / "x.trec")]) == 2
    assert "no fusion weights beside this model" in capsys.readouterr().err
    weights = FusionWeights(cross_encoder=1.0, dense=4.0, first_stage=1.0)
    FusedReranker(None, DenseEncoder(minilm_dir), weights, Feedback(depth=3, weight=1.0)).save_weights(folder)
    out = tmp_path / "fused.trec"
    assert main(["rerank", "--model", str(folder), "--fused", *args, "--output", str(out)]) == 0
    got = load_run(out)
    cands = candidates(dl19, small_run, depth=10)
    expected = FusedReranker.load(folder).rerank_many([c.query for c in cands], [c.texts for c in cands],
                                                      first_stage=[c.first_stage for c in cands])
    plain = load_run(tmp_path / "plain.trec") if main(["rerank", "--model", str(folder), *args, "--output", str(tmp_path / "plain.trec")]) == 0 else None
    for c, scores in zip(cands, expected):
        np.testing.assert_allclose([got[c.query_id][d] for d in c.doc_ids], scores, atol=1e-4)
    assert any(sorted(got[q], key=got[q].get) != sorted(plain[q], key=plain[q].get) for q in got)  # fusion changed rankings
    assert main(["rerank", "--model", str(folder), "--fused", *args, "--engine", "ray", "--output", str(tmp_path / "r.trec")]) == 2
    assert "--fused runs with --engine local only" in capsys.readouterr().err

"""crossrank ranks like trec_eval: score desc (as float32), ties by doc id descending."""
from __future__ import annotations

import random

import pytest
import pytrec_eval

from crossrank.data import load_run, rank_scores, write_run
from crossrank.evaluation import evaluate_per_query


def _tied_data(seed: int = 7, n_queries: int = 40):
    rng = random.Random(seed)
    qrels, run = {}, {}
    for q in range(n_queries):
        docs = [str(rng.randrange(1, 300)) for _ in range(25)]
        run[f"q{q}"] = {d: float(rng.randrange(3)) for d in docs}  # heavy ties, ids like "9" vs "10"
        qrels[f"q{q}"] = {d: rng.choice([0, 0, 1, 2]) for d in docs[:12]}
    return qrels, run


def test_tie_break_documented_example():
    # relevant "10" ties with "9": docno descending puts "9" ("9" > "10" as strings) first
    evaluator = pytrec_eval.RelevanceEvaluator({"q": {"10": 1}}, {"recip_rank"})
    assert evaluator.evaluate({"q": {"9": 1.0, "10": 1.0}})["q"]["recip_rank"] == 0.5
    assert evaluate_per_query({"q": {"10": 1}}, {"q": {"9": 1.0, "10": 1.0}}, ["RR@10"])["q"]["RR@10"] == 0.5
    # scores equal in float32 are ties for trec_eval
    assert evaluator.evaluate({"q": {"9": 1.0 + 1e-9, "10": 1.0}})["q"]["recip_rank"] == 0.5
    assert [d for d, _ in rank_scores({"9": 1.0, "10": 1.0 + 1e-9})] == ["9", "10"]


@pytest.mark.parametrize("rel", [1, 2])
def test_reciprocal_rank_matches_pytrec_eval_under_heavy_ties(rel):
    qrels, run = _tied_data()
    ours = evaluate_per_query(qrels, run, ["RR"], relevance_level=rel)
    theirs = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}, relevance_level=rel).evaluate(run)
    assert {q: v["RR"] for q, v in ours.items()} == pytest.approx({q: v["recip_rank"] for q, v in theirs.items()})


def test_written_ranks_agree_with_trec_eval_order(tmp_path):
    qrels, run = _tied_data(seed=3)
    path = tmp_path / "run.trec"
    write_run(path, run)
    cutoffs = (1, 2, 3, 5, 10)
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {f"P_{k}" for k in cutoffs})
    theirs = evaluator.evaluate(load_run(path))
    by_rank = {}
    for line in path.read_text().splitlines():
        qid, _, doc, rank, _, _ = line.split()
        by_rank.setdefault(qid, []).append((int(rank), doc))
    for qid, ranked in by_rank.items():
        docs = [d for _, d in sorted(ranked)]
        for k in cutoffs:
            relevant = sum(qrels[qid].get(d, 0) >= 1 for d in docs[:k])
            assert relevant / k == pytest.approx(theirs[qid][f"P_{k}"]), (qid, k)

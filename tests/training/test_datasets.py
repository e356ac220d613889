"""Training examples from qrels + BM25 candidates and from triples, on real MS MARCO data."""
from __future__ import annotations

import pytest

from crossrank.data import load_qrels
from crossrank.training import DataConfig
from crossrank.training.datasets import build_evaluator, build_examples, load_split


def test_split_file(dev600):
    train = load_split(dev600 / "split.tsv", "train")
    tune = load_split(dev600 / "split.tsv", "tune")
    assert len(train) == 500 and len(tune) == 100 and not train & tune
    with pytest.raises(ValueError, match="no query is in split 'dev'"):
        load_split(dev600 / "split.tsv", "dev")


@pytest.mark.parametrize("fmt, per_query", [("lists", 8), ("tuples", 8), ("groups", 4)])
def test_list_shaped_formats(dev600_data, fmt, per_query):
    cfg = DataConfig(format=fmt, num_negatives=7, group_size=4, **dev600_data)
    examples = build_examples(cfg, seed=0)
    qrels = load_qrels(dev600_data["qrels"])
    train = load_split(dev600_data["split"], "train")
    # 500 train queries, minus those whose relevant passage is not among their 20 candidates
    assert 400 < len(examples) <= 500
    for e in examples:
        assert e.query_id in train
        assert len(e.passages) == per_query and sum(e.targets) == 1.0
        positives = [d for d, t in zip(e.doc_ids, e.targets) if t > 0]
        assert all(qrels[e.query_id].get(d, 0) > 0 for d in positives)
        negatives = [d for d, t in zip(e.doc_ids, e.targets) if t == 0]
        assert not any(qrels[e.query_id].get(d, 0) > 0 for d in negatives)  # never a judged positive
        if fmt != "lists":
            assert e.targets[0] == 1.0  # positive first for tuples and Tevatron groups


def test_pairs_with_negative_ratio(dev600_data):
    examples = build_examples(DataConfig(format="pairs", negatives_ratio=3, **dev600_data))
    pos = sum(1 for e in examples if e.targets == [1.0])
    neg = sum(1 for e in examples if e.targets == [0.0])
    assert neg == 3 * pos and all(len(e.passages) == 1 for e in examples)


def test_random_sampling_is_seeded(dev600_data):
    cfg = DataConfig(format="tuples", num_negatives=3, sampling="random", **dev600_data)
    a, b, c = build_examples(cfg, seed=1), build_examples(cfg, seed=1), build_examples(cfg, seed=2)
    assert [e.doc_ids for e in a] == [e.doc_ids for e in b] != [e.doc_ids for e in c]


def test_triples(data_dir):
    path = data_dir / "msmarco-triples100" / "triples.train.small.first100.tsv"
    tuples = build_examples(DataConfig(format="tuples", triples=str(path)))
    pairs = build_examples(DataConfig(format="pairs", triples=str(path)))
    assert len(tuples) == 100 and tuples[0].targets == [1.0, 0.0]
    assert len(pairs) == 200


def test_evaluator_on_bm25_order_reproduces_bm25(dev600_data):
    """Scoring candidates by their BM25 rank must give the BM25 run's own metrics on the tune split."""
    from crossrank.data import load_run
    from crossrank.evaluation import evaluate
    from crossrank.training import EvalConfig

    ev = build_evaluator(EvalConfig(depth=20, **dev600_data))
    assert len(ev.candidates) == 100

    class BM25Order:
        def score_candidates(self, candidates, options=None):
            import numpy as np

            return [-np.arange(len(c), dtype=np.float32) for c in candidates]  # candidates arrive in BM25 order

    run = load_run(dev600_data["run"])
    tune = {q: run[q] for q in ev.candidates}
    qrels = {q: rels for q, rels in load_qrels(dev600_data["qrels"]).items() if q in ev.candidates}
    expected = evaluate(qrels, tune, metrics=["RR@10", "nDCG@10", "AP"])
    got = ev(BM25Order())
    assert got == pytest.approx(expected, abs=1e-9)
    assert 0.2 < got["RR@10"] < 0.6  # BM25 MRR@10 on this biased sample is ~0.37


def test_missing_source_is_named(dev600_data):
    cfg = DataConfig(format="lists", **{**dev600_data, "qrels": None})
    with pytest.raises(ValueError, match="data.qrels"):
        build_examples(cfg)


def test_example_files_round_trip_and_errors(dev600_data, tmp_path):
    from crossrank.training.example_files import iter_examples, write_examples

    examples = build_examples(DataConfig(format="tuples", num_negatives=2, **dev600_data))[:5]
    path = tmp_path / "ex.jsonl.gz"
    assert write_examples(path, examples) == 5
    again = build_examples(DataConfig(examples=str(path)))
    assert [(e.query, e.passages, e.targets, e.doc_ids) for e in again] == [(e.query, e.passages, e.targets, e.doc_ids) for e in examples]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "passages": ["p"], "labels": [1]}\n{"query": "q", "passages": ["p", "r"], "labels": [1]}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: .*one target per passage"):
        list(iter_examples(bad))

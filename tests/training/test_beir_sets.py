"""NanoBEIR-style BEIR sets on the real SciFact and CACM folders: sampling, BM25 candidates, metrics, config."""
from __future__ import annotations

import random
import shutil

import numpy as np
import pytest

from crossrank.data import Collection, iter_corpus, load_qrels, load_queries
from crossrank.data.records import Query
from crossrank.evaluation import evaluate
from crossrank.retrieval import BM25Index
from crossrank.training import MultiDatasetEvaluator, RerankingEvaluator, TrainConfig
from crossrank.training.beir_sets import BeirSetConfig, beir_candidates, beir_evaluators, nano_mean
from crossrank.training.datasets import build_evaluator

SMALL = {"queries_per_set": 5, "depth": 10}


@pytest.fixture(scope="module")
def cacm(data_dir):
    return data_dir / "classic" / "cacm"


@pytest.fixture(scope="module")
def scifact(data_dir):
    return data_dir / "scifact"


@pytest.fixture(scope="module")
def small_sets(cacm, scifact) -> MultiDatasetEvaluator:
    return beir_evaluators(BeirSetConfig([str(cacm), str(scifact)], **SMALL), metrics=["nDCG@10", "RR@10"])


def _bm25_run(folder, ids, depth):
    """BM25Index's own top-`depth` for the given queries of a folder."""
    queries = load_queries(folder / "queries.jsonl")
    index = BM25Index.build(iter_corpus(folder / "corpus.jsonl"), show_progress=False)
    return index.search([Query(q, queries[q]) for q in ids], k=depth, show_progress=False)


def test_sample_is_reproducible_and_only_judged_queries(cacm):
    first = beir_candidates(cacm, **SMALL)
    again = beir_candidates(cacm, **SMALL)
    other = beir_candidates(cacm, seed=1, **SMALL)
    ids = [c.query_id for c in first.candidates]
    assert first.name == "cacm" and len(ids) == 5
    assert ids == [c.query_id for c in again.candidates]
    assert ids != [c.query_id for c in other.candidates]
    qrels, queries = load_qrels(cacm / "qrels" / "test.tsv"), load_queries(cacm / "queries.jsonl")
    judged = sorted(q for q, rels in qrels.items() if q in queries and any(r >= 1 for r in rels.values()))
    assert len(judged) == 52 < len(queries)  # CACM: 64 queries, 52 judged
    assert ids == sorted(random.Random(0).sample(judged, 5))
    assert first.qrels == {q: qrels[q] for q in ids}
    assert all(c.query == queries[c.query_id] for c in first.candidates)
    everything = beir_candidates(cacm, queries_per_set=500, depth=1)
    assert [c.query_id for c in everything.candidates] == judged


def test_candidates_are_bm25_top_k(scifact):
    beir_set = beir_candidates(scifact, **SMALL)
    ids = [c.query_id for c in beir_set.candidates]
    run = _bm25_run(scifact, ids, 10)
    corpus = Collection.open(scifact / "corpus.jsonl")
    for c in beir_set.candidates:
        assert c.doc_ids == list(run[c.query_id]) and len(c) == 10
        assert c.first_stage == list(run[c.query_id].values())
        assert c.texts == [corpus[d] for d in c.doc_ids]  # title + text


def test_first_stage_is_evaluate_of_the_bm25_run(small_sets, cacm, scifact):
    assert [ev.name for ev in small_sets.evaluators] == ["cacm", "scifact"]
    got = small_sets.first_stage()
    for ev, folder in zip(small_sets.evaluators, (cacm, scifact)):
        assert isinstance(ev, RerankingEvaluator) and len(ev.candidates) == 5
        run = _bm25_run(folder, list(ev.candidates), 10)
        qrels = {q: rels for q, rels in load_qrels(folder / "qrels" / "test.tsv").items() if q in ev.candidates}
        expected = evaluate(qrels, run, metrics=["nDCG@10", "RR@10"])
        assert got[f"{ev.name}/nDCG@10"] == pytest.approx(expected["nDCG@10"], abs=1e-12)
        assert got[f"{ev.name}/RR@10"] == pytest.approx(expected["RR@10"], abs=1e-12)
        assert 0.0 < got[f"{ev.name}/nDCG@10"] <= 1.0


def test_mean_is_the_mean_of_the_sets(small_sets):
    got = small_sets.first_stage()
    per_set = {ev.name: ev.first_stage() for ev in small_sets.evaluators}
    assert got["nDCG@10"] == pytest.approx(np.mean([got["cacm/nDCG@10"], got["scifact/nDCG@10"]]), abs=1e-12)
    assert nano_mean(per_set) == pytest.approx(got["nDCG@10"], abs=1e-12)
    assert nano_mean(per_set, "RR@10") == pytest.approx(got["RR@10"], abs=1e-12)
    with pytest.raises(ValueError, match="set 'cacm' lacks it"):
        nano_mean(per_set, "AP")
    with pytest.raises(ValueError, match="at least one set"):
        nano_mean({})


def test_missing_file_is_named(cacm, tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    for name in ("corpus.jsonl", "queries.jsonl"):
        shutil.copy(cacm / name, folder / name)
    with pytest.raises(ValueError, match=r"expects qrels/test\.tsv, but .*qrels/test\.tsv does not exist"):
        BeirSetConfig([str(folder)])
    with pytest.raises(ValueError, match=r"qrels/test\.tsv"):
        beir_candidates(folder)
    with pytest.raises(ValueError, match=r"expects qrels/train\.tsv"):
        BeirSetConfig([str(cacm)], split="train")  # CACM has only a test split
    (folder / "queries.jsonl").unlink()
    with pytest.raises(ValueError, match=r"expects queries\.jsonl"):
        BeirSetConfig([str(folder)])
    with pytest.raises(ValueError, match="not a directory"):
        BeirSetConfig([str(tmp_path / "absent")])


def test_bad_settings_are_refused(cacm):
    with pytest.raises(ValueError, match=r"`queries_per_set` expects an integer >= 1, but got 0"):
        BeirSetConfig([str(cacm)], queries_per_set=0)
    with pytest.raises(ValueError, match=r"`queries_per_set` expects an integer >= 1, but got 0"):
        beir_candidates(cacm, queries_per_set=0)
    with pytest.raises(ValueError, match=r"`depth` expects an integer >= 1, but got True"):
        BeirSetConfig([str(cacm)], depth=True)
    with pytest.raises(ValueError, match="expects a list of folder paths, but got str"):
        BeirSetConfig(str(cacm))
    with pytest.raises(ValueError, match="at least one"):
        BeirSetConfig([])
    with pytest.raises(ValueError, match="distinct names.*'cacm' twice"):
        BeirSetConfig([str(cacm), str(cacm) + "/"])
    with pytest.raises(ValueError, match="nDCG@x"):
        beir_evaluators(BeirSetConfig([str(cacm)], **SMALL), metrics=["nDCG@x"])


def test_train_config_with_beir_sets_builds(cacm, dev600_data):
    beir = {"folders": [str(cacm)], **SMALL}
    config = TrainConfig.from_dict({"model": "m", "eval": {"beir": beir, "metric_for_best": "cacm/nDCG@10"}})
    assert config.eval.beir == BeirSetConfig([str(cacm)], **SMALL)
    assert TrainConfig.from_dict(config.to_dict()) == config  # what `crossrank train --config` does
    ev = build_evaluator(config.eval)
    assert isinstance(ev, MultiDatasetEvaluator) and [e.name for e in ev.evaluators] == ["cacm"]
    assert {"cacm/nDCG@10", "nDCG@10", "cacm/RR@10", "cacm/AP"} <= set(ev.first_stage())

    short = TrainConfig.from_dict({"model": "m", "eval": {**dev600_data, "depth": 20, "beir": [str(cacm)]}})
    assert short.eval.beir == BeirSetConfig([str(cacm)])
    both = build_evaluator(TrainConfig.from_dict(
        {"model": "m", "eval": {**dev600_data, "depth": 20, "beir": beir, "metric_for_best": "tune/RR@10"}}).eval)
    assert [e.name for e in both.evaluators] == ["tune", "cacm"]
    base = both.first_stage()
    assert base["nDCG@10"] == pytest.approx((base["tune/nDCG@10"] + base["cacm/nDCG@10"]) / 2, abs=1e-12)

    old = TrainConfig.from_dict({"model": "m", "eval": {**dev600_data, "depth": 20}})
    assert old.eval.beir is None
    assert isinstance(build_evaluator(old.eval), RerankingEvaluator)


def test_train_config_errors_name_the_beir_setting(cacm):
    def load(ev):
        return TrainConfig.from_dict({"model": "m", "eval": ev})

    with pytest.raises(ValueError, match="config: eval.beir: unknown setting.*queries"):
        load({"beir": {"folders": [str(cacm)], "queries": 5}})
    with pytest.raises(ValueError, match=r"config: eval.beir: beir `queries_per_set` expects an integer >= 1, but got 0"):
        load({"beir": {"folders": [str(cacm)], "queries_per_set": 0}})
    with pytest.raises(ValueError, match=r"metric_for_best expects one of .*cacm/nDCG@10.*but got 'scifact/nDCG@10'"):
        load({"beir": [str(cacm)], "metric_for_best": "scifact/nDCG@10"})
    with pytest.raises(ValueError, match=r"but got 'tune/nDCG@10'"):
        load({"beir": [str(cacm)], "metric_for_best": "tune/nDCG@10"})  # no held-out set configured


def test_evaluator_scores_with_a_tiny_model(tiny_model_dir, cacm):
    from crossrank import CrossEncoder

    ev = beir_evaluators(BeirSetConfig([str(cacm)], **SMALL))
    result = ev(CrossEncoder(tiny_model_dir, max_length=64))
    assert set(result) == {"cacm/nDCG@10", "nDCG@10"}
    assert result["nDCG@10"] == result["cacm/nDCG@10"] and 0.0 <= result["nDCG@10"] <= 1.0


def test_trainer_keeps_best_on_a_beir_metric(tiny_model_dir, dev600_data, cacm, tmp_path):
    from crossrank.training.trainer import train

    config = TrainConfig.from_dict({
        "model": str(tiny_model_dir), "output_dir": str(tmp_path / "out"), "loss": "lambda", "batch_size": 4,
        "max_steps": 2, "save_steps": 2, "logging_steps": 1, "max_length": 64, "precision": "fp32",
        "data": {"format": "lists", "num_negatives": 3, **dev600_data},
        "eval": {"beir": {"folders": [str(cacm)], **SMALL}, "metrics": ["nDCG@10"], "steps": 2,
                 "metric_for_best": "cacm/nDCG@10"},
    })
    result = train(config, verbose=False)
    evals = [h for h in result.log_history if "eval_cacm/nDCG@10" in h]
    assert [h["step"] for h in evals] == [2] and "eval_nDCG@10" in evals[0]
    assert result.best_metric == pytest.approx(evals[0]["eval_cacm/nDCG@10"])
    assert set(result.data_check.baseline) == {"cacm/nDCG@10", "nDCG@10"}

"""Published figures reproduced on the shared data files (see the data README / PROVENANCE)."""
from __future__ import annotations

import pytest

from crossrank.data import load_qrels
from crossrank.evaluation import evaluate


@pytest.mark.parametrize(("run_name", "ndcg10"), [("bm25", 0.5058), ("splade-pp-ed", 0.7308)])
def test_dl19_ndcg10(shared_data, run_name, ndcg10):
    dl19 = shared_data / "trec-dl19"
    result = evaluate(dl19 / "qrels.dl19-passage.txt", dl19 / "runs" / f"run.dl19.{run_name}.top100.trec",
                      ["nDCG@10", "AP", "RR@10"], relevance_level=2)
    assert result["nDCG@10"] == pytest.approx(ndcg10, abs=1e-4)


def test_dl19_ndcg_unaffected_by_relevance_level(shared_data):
    dl19 = shared_data / "trec-dl19"
    run = dl19 / "runs" / "run.dl19.bm25.top100.trec"
    qrels = load_qrels(dl19 / "qrels.dl19-passage.txt")
    assert evaluate(qrels, run, ["nDCG@10"], 1)["nDCG@10"] == evaluate(qrels, run, ["AP", "nDCG@10"], 2)["nDCG@10"]


def test_msmarco_dev600_bm25_mrr10(shared_data):
    dev = shared_data / "msmarco-dev600"
    result = evaluate(dev / "qrels.dev.small.600q.trec", dev / "run.bm25.top20.trec", ["MRR@10"])
    assert result["MRR@10"] == pytest.approx(0.3678, abs=1e-4)  # README: 0.368

"""The evaluation sets' scoring precision: bf16 only where faster on this host and faithful on held-out queries."""
from __future__ import annotations

import pytest

from crossrank.data import load_qrels
from crossrank.data.candidates import from_run
from crossrank.model.backends import precision as P
from crossrank.model.backends.base import update_json
from crossrank.pipeline import ScoringOptions, score
from crossrank.workflows.scoring_precision import FidelityBar, choose_scoring_precision


@pytest.fixture(scope="module")
def tune_lists(data_dir):
    """Ten real dev600 queries with their BM25 top-20 and the official qrels."""
    d = data_dir / "msmarco-dev600"
    cands = list(from_run(d / "run.bm25.top20.trec", d / "collection.tsv", d / "queries.tsv", 20))[:10]
    return cands, load_qrels(d / "qrels.dev.small.600q.trec")


def measured(tmp_path, monkeypatch, ce, fp32: float, bf16: float) -> None:
    """This host's fp32 / bf16 forward-pass timing of `ce`, as the per-host cache holds it."""
    monkeypatch.setenv("CROSSRANK_CACHE", str(tmp_path / "cache"))
    key = P.cache_key(ce.model, ce.device, 16, 128, "inference")
    update_json(tmp_path / "cache" / P.CACHE_FILE, key, {"seconds": {"fp32": fp32, "bf16": bf16}, "rounds": 3})


def test_fp32_where_bf16_is_not_clearly_faster(minilm_ce, tune_lists, tmp_path, monkeypatch):
    cands, qrels = tune_lists
    measured(tmp_path, monkeypatch, minilm_ce, fp32=1.0, bf16=0.9)
    exact = score(minilm_ce, cands, ScoringOptions(activation="identity"))
    got = choose_scoring_precision(minilm_ce, cands, exact, qrels, backends=("torch",))
    assert got.precision == "fp32" and "1.11x fp32" in got.reason and got.ndcg_diff is None
    assert minilm_ce.precision == "fp32"


@pytest.mark.parametrize("bar, expected", [(FidelityBar(max_ndcg_diff=1.0, min_overlap=0.0), "bf16"),
                                           (FidelityBar(max_ndcg_diff=1.0, min_overlap=1.01), "fp32")])
def test_bf16_where_faster_only_if_it_keeps_the_exact_ranking(minilm_ce, tune_lists, tmp_path, monkeypatch, bar, expected):
    cands, qrels = tune_lists
    measured(tmp_path, monkeypatch, minilm_ce, fp32=1.0, bf16=0.4)
    exact = score(minilm_ce, cands, ScoringOptions(activation="identity"))
    got = choose_scoring_precision(minilm_ce, cands, exact, qrels, bar, backends=("torch",))
    assert got.precision == expected and got.backend == "torch" and got.speedup == pytest.approx(2.5)
    assert 0.5 <= got.overlap <= 1.0 and abs(got.ndcg_diff) < 0.2  # measured on the real lists in bf16
    assert ("faithful" in got.reason) and ("not faithful" in got.reason) == (expected == "fp32")
    assert minilm_ce.precision == "fp32"  # the model's backend is left as it was


def test_one_score_array_per_list(minilm_ce, tune_lists):
    cands, qrels = tune_lists
    with pytest.raises(ValueError, match="one score array per candidate list"):
        choose_scoring_precision(minilm_ce, cands, [], qrels)


def test_the_fastest_faithful_path_is_chosen_openvino_first_where_faster(minilm_ce, tune_lists, tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    from crossrank import CrossEncoder
    from crossrank.model.backends.openvino_backend import openvino_bf16_supported

    if not openvino_bf16_supported():
        pytest.skip("this CPU has no native bf16 for OpenVINO")
    cands, qrels = tune_lists
    ce = CrossEncoder(minilm_ce.save(tmp_path / "minilm"), max_length=minilm_ce.max_length)  # the conversion is written beside it
    measured(tmp_path, monkeypatch, ce, fp32=1.0, bf16=0.5)
    key = P.cache_key(ce.model, ce.device, 16, 128, "inference-openvino-bf16")
    update_json(tmp_path / "cache" / P.CACHE_FILE, key, {"seconds": {"fp32": 1.5, "openvino": 0.5}})
    exact = score(ce, cands, ScoringOptions(activation="identity"))
    loose = FidelityBar(max_ndcg_diff=1.0, min_overlap=0.0)
    got = choose_scoring_precision(ce, cands, exact, qrels, loose)
    assert (got.backend, got.precision, got.speedup) == ("openvino", "bf16", 3.0) and "openvino bf16 3.00x" in got.reason
    assert 0.5 <= got.overlap <= 1.0 and (ce.backend, ce.precision) == ("torch", "fp32")
    # where the faster path fails the bar, the next one is tried on the same lists
    strict_overlap = FidelityBar(max_ndcg_diff=1.0, min_overlap=got.overlap + 1e-6)
    second = choose_scoring_precision(ce, cands, exact, qrels, strict_overlap)
    assert second.backend == "torch" or second.precision == "fp32"
    assert "openvino bf16" in second.reason and "not faithful" in second.reason

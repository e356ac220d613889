"""bf16 with the weights cast once (next to autocast): the copy, its refresh after training, the
measurement that picks it, the selection, its own fidelity records, and its ranking on real pairs."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from crossrank import CrossEncoder
from crossrank.model.backends import TorchBackend, bf16_weights, passing_record, precision, selection
from crossrank.model.backends.base import read_json
from crossrank.model.backends.bf16_weights import Bf16Variant, cast_bf16, choose_bf16_variant
from crossrank.model.backends.path_timing import PathTiming
from crossrank.workflows.fidelity import FidelityConfig, check_fidelity

pytestmark = pytest.mark.usefixtures("private_cache")  # host measurements in a per-test cache (conftest)


@pytest.fixture
def quiet_host(monkeypatch):
    """A host whose load probe reads idle and whose rounds agree: the measurement is cached."""
    monkeypatch.setattr(precision, "host_load_probe", lambda: (lambda: 0.0))
    monkeypatch.setattr(precision, "rounds_disagree", lambda samples: "")


def pick(monkeypatch, weights: bool):
    monkeypatch.setattr(selection, "model_bf16_speedup", lambda ce, refresh=False: 2.0)
    monkeypatch.setattr(selection, "choose_bf16_variant",
                        lambda model, refresh=False: Bf16Variant(weights, f"{'weights' if weights else 'autocast'} (test)", 1.2))


def test_cast_copy_is_bf16_and_leaves_the_source_alone(tiny_copy):
    ce = CrossEncoder(tiny_copy)
    clone = cast_bf16(ce.model)
    assert clone is not ce.model and not clone.training
    assert {p.dtype for p in clone.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in ce.model.parameters()} == {torch.float32}


def test_bf16_weights_backend_scores_near_fp32_and_follows_weight_changes(tiny_copy, pairs):
    ce = CrossEncoder(tiny_copy)
    fp32 = ce.predict(pairs)
    ce.inference_backend = TorchBackend(ce.model, ce.device, "bf16", bf16_weights=True)
    assert ce.inference_backend.lossy and ce.inference_backend.variant == "bf16-weights"
    assert "weights cast to bf16 once" in ce.inference_backend.describe()
    module = ce.inference_backend.module
    scores = ce.predict(pairs)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, fp32, atol=0.05)
    with torch.no_grad():  # an in-place change, as an optimizer step makes
        for p in ce.model.bert.encoder.parameters():
            p.mul_(1.5)
    after = ce.predict(pairs)
    assert ce.inference_backend.module is not module  # cast again from the new weights
    ce.inference_backend = TorchBackend(ce.model, ce.device, "bf16", bf16_weights=True)
    np.testing.assert_array_equal(after, ce.predict(pairs))
    assert not np.allclose(after, scores, atol=1e-3)


@pytest.mark.parametrize("kwargs", [{"precision": "fp32"}, {"precision": "int8"}])
def test_bf16_weights_needs_bf16_and_fp32_weights(tiny_copy, kwargs):
    ce = CrossEncoder(tiny_copy)
    with pytest.raises(ValueError, match="bf16_weights casts fp32 weights"):
        TorchBackend(ce.model, ce.device, bf16_weights=True, **kwargs)
    half = CrossEncoder(tiny_copy, dtype="bf16")
    with pytest.raises(ValueError, match="with bfloat16 weights"):
        TorchBackend(half.model, half.device, "bf16", bf16_weights=True)


@pytest.mark.parametrize("seconds, weights", [({"autocast": 1.0, "weights": 0.9}, True),
                                              ({"autocast": 1.0, "weights": 0.97}, False),
                                              ({"autocast": 1.0, "weights": float("inf")}, False)])
def test_weights_need_a_measured_gain(seconds, weights):
    variant = bf16_weights._decide(PathTiming(seconds, cached=False))
    assert variant.weights is weights
    assert ("weights cast once" in variant.reason) is weights


def test_variant_measurement_times_both_and_is_cached(tiny_copy, tmp_path, quiet_host):
    ce = CrossEncoder(tiny_copy)
    first = choose_bf16_variant(ce.model)
    assert not first.cached and first.gain > 0
    (key, entry) = next(iter(read_json(tmp_path / "cache" / "precision.json").items()))
    assert key.endswith("|16x128|inference-bf16-weights")
    assert first.gain == pytest.approx(entry["seconds"]["autocast"] / entry["seconds"]["weights"])
    again = choose_bf16_variant(ce.model)
    assert again.cached and again.weights == first.weights and "cached measurement" in again.reason


def test_noisy_variant_measurement_is_not_cached(tiny_copy, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "host_load_probe", lambda: (lambda: 1.5))  # another process used 1.5 cores
    choose_bf16_variant(CrossEncoder(tiny_copy).model)
    assert read_json(tmp_path / "cache" / "precision.json") == {}


@pytest.mark.parametrize("weights", [True, False])
def test_selection_runs_the_measured_variant(tiny_copy, monkeypatch, caplog, weights):
    pick(monkeypatch, weights)
    with caplog.at_level(logging.WARNING):
        ce = CrossEncoder(tiny_copy, precision="bf16")
    b = ce.inference_backend
    assert (ce.backend, ce.precision, b.bf16_weights) == ("torch", "bf16", weights)
    assert ("weights (test)" if weights else "autocast (test)") in b.reason
    assert b.describe() in caplog.text and "no passing fidelity check" in caplog.text


def test_a_check_of_autocast_does_not_vouch_for_bf16_weights(tiny_copy, data_dir, monkeypatch, caplog):
    loose = FidelityConfig(data_dir / "trec-dl19", queries=3, max_ndcg_diff=1.0, min_overlap=0.0)
    pick(monkeypatch, False)
    ce = CrossEncoder(tiny_copy)
    assert check_fidelity(ce, "torch", "bf16", loose).passed
    assert passing_record(ce, "torch", "bf16") is not None
    assert passing_record(ce, "torch", "bf16", "bf16-weights") is None
    pick(monkeypatch, True)
    report = check_fidelity(ce, "torch", "bf16", loose)
    assert report.variant == "bf16-weights" and "(bf16-weights)" in report.summary()
    assert passing_record(ce, "torch", "bf16", "bf16-weights")["ndcg"] == report.ndcg
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        CrossEncoder(tiny_copy, precision="bf16")
    assert "no passing fidelity check" not in caplog.text


def test_bf16_weights_keep_the_ranking_of_real_dl19_pairs(minilm_ce, data_dir):
    from crossrank.data.candidates import from_run

    dl19 = data_dir / "trec-dl19"
    cands = list(from_run(dl19 / "runs" / "run.dl19.bm25.top100.trec", dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", 100))
    pairs = [(c.query, t) for c in cands[:2] for t in c.texts]
    exact = minilm_ce.predict(pairs)
    with minilm_ce.using_backend("torch", "fp32"):
        minilm_ce.inference_backend = TorchBackend(minilm_ce.model, minilm_ce.device, "bf16", bf16_weights=True)
        cast = minilm_ce.predict(pairs)
    assert np.abs(cast - exact).max() < 0.05
    assert kendalltau(exact, cast).statistic > 0.95
    assert minilm_ce.precision == "fp32"  # the session fixture is left as it was

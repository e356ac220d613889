"""The OpenVINO backend: f32 equals torch on real DL19 pairs, bf16 keeps their ranking, the
conversion is kept beside the model and made again when the weights change, clear errors."""
from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from crossrank import CrossEncoder
from crossrank.model.backends import OpenVINOBackend, openvino_backend, selection

pytestmark = pytest.mark.usefixtures("private_cache")  # host measurements in a per-test cache (conftest)


def needs_openvino():
    pytest.importorskip("openvino")


def dl19_pairs(data_dir, n_queries=2):
    from crossrank.data.candidates import from_run

    dl19 = data_dir / "trec-dl19"
    cands = list(from_run(dl19 / "runs" / "run.dl19.bm25.top100.trec", dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", 100))
    return [(c.query, t) for c in cands[:n_queries] for t in c.texts]


def test_openvino_missing_names_the_extra(tiny_copy, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` now fails
    with pytest.raises(ImportError, match=r"pip install crossrank\[openvino\]"):
        CrossEncoder(tiny_copy, backend="openvino")


@pytest.mark.parametrize("kwargs, message", [({"precision": "int8"}, "runs fp32 or bf16"), ({"precision": "fp16"}, "fp16 runs on CUDA only|runs fp32 or bf16")])
def test_openvino_refuses_what_it_cannot_run(tiny_copy, kwargs, message):
    needs_openvino()
    with pytest.raises(ValueError, match=message):
        CrossEncoder(tiny_copy, backend="openvino", **kwargs)


def test_f32_equals_torch_on_real_dl19_pairs(minilm_ce, data_dir, tmp_path):
    needs_openvino()
    pairs = dl19_pairs(data_dir)
    folder = minilm_ce.save(tmp_path / "minilm")
    ov_ce = CrossEncoder(folder, backend="openvino", max_length=minilm_ce.max_length)
    assert isinstance(ov_ce.inference_backend, OpenVINOBackend) and (ov_ce.backend, ov_ce.precision) == ("openvino", "fp32")
    assert not ov_ce.inference_backend.lossy and (folder / "openvino" / "model.xml").exists()
    np.testing.assert_allclose(ov_ce.predict(pairs), minilm_ce.predict(pairs), atol=1e-4)


def test_bf16_keeps_the_ranking_of_real_dl19_pairs(minilm_ce, data_dir, tmp_path, caplog):
    needs_openvino()
    if not openvino_backend.openvino_bf16_supported():
        pytest.skip("this CPU has no native bf16 for OpenVINO")
    pairs = dl19_pairs(data_dir)
    folder = minilm_ce.save(tmp_path / "minilm")
    with caplog.at_level(logging.WARNING):
        ov_ce = CrossEncoder(folder, backend="openvino", precision="bf16", max_length=minilm_ce.max_length)
    assert ov_ce.precision == "bf16" and ov_ce.inference_backend.lossy
    assert "no passing fidelity check" in caplog.text  # lossy paths are trusted through `crossrank export --check` only
    exact, fast = minilm_ce.predict(pairs), ov_ce.predict(pairs)
    assert np.abs(fast - exact).max() < 0.1 and kendalltau(exact, fast).statistic > 0.95


def test_conversion_is_kept_and_made_again_for_other_weights(tiny_copy, monkeypatch, pairs):
    needs_openvino()
    torch_ce = CrossEncoder(tiny_copy)
    first = CrossEncoder(tiny_copy, backend="openvino")
    xml = tiny_copy / "openvino" / "model.xml"
    mtime = xml.stat().st_mtime_ns
    np.testing.assert_allclose(first.predict(pairs), torch_ce.predict(pairs), atol=1e-5)

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again although a current conversion is there")

    with monkeypatch.context() as m:
        m.setattr(openvino_backend, "convert", no_conversion)
        again = CrossEncoder(tiny_copy, backend="openvino")
    np.testing.assert_allclose(again.predict(pairs), torch_ce.predict(pairs), atol=1e-5)
    # in-place training of the weights: the backend converts them again before it scores
    with torch.no_grad():
        for p in first.model.bert.encoder.parameters():
            p.mul_(1.5)
    trained = first.predict(pairs)
    with first.using_backend("torch", "fp32"):
        np.testing.assert_allclose(trained, first.predict(pairs), atol=1e-5)
    assert not np.allclose(trained, torch_ce.predict(pairs), atol=1e-3)
    # saved weights that differ from the conversion's: a stale conversion is made again, not used
    first.save(tiny_copy)
    fresh = CrossEncoder(tiny_copy, backend="openvino")
    assert xml.stat().st_mtime_ns != mtime
    np.testing.assert_allclose(fresh.predict(pairs), trained, atol=1e-5)


def test_bf16_without_native_support_runs_fp32_and_says_so(tiny_copy, monkeypatch, caplog):
    needs_openvino()
    monkeypatch.setattr(selection, "openvino_bf16_supported", lambda: False)
    with caplog.at_level(logging.WARNING):
        ce = CrossEncoder(tiny_copy, backend="openvino", precision="bf16")
    assert (ce.backend, ce.precision) == ("openvino", "fp32") and "no native bf16" in caplog.text


def measured_openvino_f32(ce, openvino_s: float, torch_s: float = 1.0) -> None:
    """A clean earlier timing of torch fp32 vs OpenVINO f32 for this model shape, in the private cache."""
    from crossrank.model.backends import precision as P
    from crossrank.model.backends.base import cache_dir, update_json

    key = P.cache_key(ce.model, ce.device, 16, 128, "inference-openvino-fp32")
    update_json(cache_dir() / P.CACHE_FILE, key, {"seconds": {"fp32": torch_s, "openvino": openvino_s}})


def test_auto_scores_exact_on_openvino_only_where_converted_and_measured_faster(tiny_copy, pairs):
    needs_openvino()
    torch_ce = CrossEncoder(tiny_copy)
    assert torch_ce.backend == "torch" and not (tiny_copy / "openvino").exists()  # nothing is converted implicitly
    measured_openvino_f32(torch_ce, openvino_s=0.5)
    assert CrossEncoder(tiny_copy).backend == "torch"  # faster, but no conversion of these weights is there
    CrossEncoder(tiny_copy, backend="openvino")  # the conversion, as `crossrank export --backend openvino` makes it
    auto = CrossEncoder(tiny_copy)
    assert (auto.backend, auto.precision) == ("openvino", "fp32") and not auto.inference_backend.lossy
    assert "OpenVINO measured 2.00x torch" in auto.inference_backend.reason
    np.testing.assert_allclose(auto.predict(pairs), torch_ce.predict(pairs), atol=1e-5)
    measured_openvino_f32(torch_ce, openvino_s=0.95)  # 1.05x: under the 1.10x an alternative must gain
    slow = CrossEncoder(tiny_copy)
    assert slow.backend == "torch" and "OpenVINO f32 measured 1.05x torch" in slow.inference_backend.reason


def test_a_saved_copy_keeps_a_current_conversion_and_drops_a_stale_one(tiny_copy, tmp_path, monkeypatch, pairs):
    needs_openvino()
    ce = CrossEncoder(tiny_copy, backend="openvino")
    expected = ce.predict(pairs)
    copy = ce.save(tmp_path / "copy")
    assert (copy / "openvino" / "model.xml").exists()

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again although the saved copy has a current conversion")

    with monkeypatch.context() as m:
        m.setattr(openvino_backend, "convert", no_conversion)
        again = CrossEncoder(copy, backend="openvino")
    np.testing.assert_allclose(again.predict(pairs), expected, atol=1e-6)
    with torch.no_grad():  # weights changed in place: the conversion beside the source is theirs no longer
        for p in ce.model.bert.encoder.parameters():
            p.mul_(1.5)
    assert not (ce.save(tmp_path / "changed") / "openvino").exists()


def test_cli_export_openvino_converts_and_says_what_the_default_is_now(tiny_copy, capsys):
    needs_openvino()
    from crossrank.cli.main import main

    assert main(["export", "--model", str(tiny_copy), "--backend", "openvino"]) == 0
    out = capsys.readouterr().out
    assert "model.xml" in out and (tiny_copy / "openvino" / "model.xml").exists()
    ratio = float(out.split("openvino f32 ")[1].split("x torch fp32")[0])
    default = out.split("scores with ")[1].split(" by default here")[0]
    assert ratio > 0 and default in ("openvino", "torch")

"""Backends and precisions: the selection rules, ONNX export and its cache, int8/bf16, the fidelity
check and its records, and `crossrank export` end to end (tiny model; one slow test on the real MiniLM)."""
from __future__ import annotations

import logging
import sys
import types

import numpy as np
import pytest
import torch

from crossrank import CrossEncoder
from crossrank.model.backends import OnnxBackend, TorchBackend, passing_record, selection
from crossrank.model.backends.base import precision_name, weights_fingerprint
from crossrank.workflows.fidelity import FidelityConfig, check_fidelity, compare_runs, top_k_overlap

pytestmark = pytest.mark.usefixtures("private_cache")  # host measurements in a per-test cache (conftest)


@pytest.fixture
def dl19(data_dir):
    return data_dir / "trec-dl19"


def needs_onnx():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")


# ---------------------------------------------------------------------------------- selection rules
def test_default_on_cpu_is_torch_fp32_without_an_export(tiny_copy):
    ce = CrossEncoder(tiny_copy)
    assert (ce.backend, ce.precision) == ("torch", "fp32")
    assert isinstance(ce.inference_backend, TorchBackend) and not ce.inference_backend.lossy
    assert "backend='torch'" in repr(ce) and "precision='fp32'" in repr(ce)


@pytest.mark.parametrize("value, expected", [("FP32", "fp32"), ("bfloat16", "bf16"), ("float16", "fp16"), ("auto", None), (None, None)])
def test_precision_aliases(value, expected):
    assert precision_name(value) == expected


@pytest.mark.parametrize("kwargs, error, message", [
    ({"precision": "fp8"}, ValueError, "precision expects"),
    ({"backend": "tensorrt"}, ValueError, "backend expects"),
    ({"precision": "fp16"}, ValueError, "fp16 runs on CUDA only"),
    ({"backend": "onnx", "precision": "bf16"}, ValueError, "ONNX backend runs fp32 or int8"),
])
def test_impossible_combinations_raise(tiny_copy, kwargs, error, message):
    with pytest.raises(error, match=message):
        CrossEncoder(tiny_copy, **kwargs)


def _cuda_stub(model):
    # what create_backend reads from a CrossEncoder, with a CUDA device (nothing runs on it)
    return types.SimpleNamespace(model=model, device=torch.device("cuda"), path=None, uses_token_types=True)


@pytest.mark.parametrize("bf16_supported, expected", [(True, "bf16"), (False, "fp16")])
def test_default_on_cuda_is_half_autocast_with_fp32_scores(tiny_copy, monkeypatch, bf16_supported, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_supported)
    model = CrossEncoder(tiny_copy).model
    b = selection.create_backend(_cuda_stub(model))
    assert (b.name, b.precision) == ("torch", expected) and not b.lossy  # the CUDA default needs no check
    assert b.default_max_tokens > 4096
    with pytest.raises(ValueError, match="ONNX backend runs on CPU"):
        selection.create_backend(_cuda_stub(model), "onnx", "fp32")
    with pytest.raises(ValueError, match="int8 runs on CPU only"):
        selection.create_backend(_cuda_stub(model), "torch", "int8")


def test_half_weights_run_in_their_dtype(tiny_copy, pairs):
    ce = CrossEncoder(tiny_copy, dtype="bf16")
    assert (ce.backend, ce.precision) == ("torch", "bf16")
    assert ce.predict(pairs).dtype == np.float32
    with pytest.raises(ValueError, match="fp32 weights"):
        CrossEncoder(tiny_copy, dtype="bf16", backend="onnx")


def test_cpu_bf16_is_chosen_by_measurement_not_by_flag(tiny_copy, monkeypatch, caplog, pairs):
    monkeypatch.setattr(selection, "model_bf16_speedup", lambda ce, refresh=False: 0.8)
    with caplog.at_level(logging.WARNING):
        slow = CrossEncoder(tiny_copy, precision="bf16")
    assert slow.precision == "fp32" and "measured 0.80x" in caplog.text
    caplog.clear()
    monkeypatch.setattr(selection, "model_bf16_speedup", lambda ce, refresh=False: 2.0)
    with caplog.at_level(logging.WARNING):
        fast = CrossEncoder(tiny_copy, precision="bf16")
    assert fast.precision == "bf16" and fast.inference_backend.lossy
    assert "no passing fidelity check" in caplog.text and "--backend torch" in caplog.text
    np.testing.assert_allclose(fast.predict(pairs), slow.predict(pairs), atol=0.05)


def test_bf16_measurement_times_the_model_and_is_cached(tiny_copy, tmp_path, monkeypatch):
    from crossrank.model.backends import model_bf16_speedup, precision
    from crossrank.model.backends.base import read_json

    # a quiet host whose rounds agree (a tiny model's millisecond timings often do not, and a noisy
    # measurement is rightly never cached: tests/model/test_precision.py covers that case)
    monkeypatch.setattr(precision, "host_load_probe", lambda: (lambda: 0.0))
    monkeypatch.setattr(precision, "rounds_disagree", lambda samples: "")
    ce = CrossEncoder(tiny_copy)
    first = model_bf16_speedup(ce)
    cached = read_json(tmp_path / "cache" / "precision.json")
    (key, entry) = next(iter(cached.items()))
    assert key.endswith("|16x128|inference") and entry["host"]["torch_capability"]
    assert first == pytest.approx(entry["seconds"]["fp32"] / entry["seconds"]["bf16"])
    assert model_bf16_speedup(ce) == first  # read back, not measured again


def test_using_backend_restores_the_previous_choice(tiny_copy):
    ce = CrossEncoder(tiny_copy)
    before = ce.inference_backend
    with ce.using_backend("torch", "int8") as b:
        assert ce.inference_backend is b and (ce.backend, ce.precision) == ("torch", "int8")
    assert ce.inference_backend is before
    with pytest.raises(RuntimeError, match="boom"), ce.using_backend("torch", "int8"):
        raise RuntimeError("boom")
    assert ce.inference_backend is before and ce.precision == "fp32"
    with pytest.raises(ValueError, match="fp16 runs on CUDA only"), ce.using_backend("torch", "fp16"):
        pass
    assert ce.inference_backend is before


def test_weights_fingerprint_is_cached_until_the_weights_change(tiny_copy):
    ce = CrossEncoder(tiny_copy)
    assert ce.uses_token_types  # BERT's tokenizer gives token type ids
    first = ce.weights_fingerprint()
    assert first == weights_fingerprint(ce.model) and ce.weights_fingerprint() == first
    with torch.no_grad():
        ce.model.classifier.bias.add_(1.0)
    assert ce.weights_fingerprint() != first and ce.weights_fingerprint() == weights_fingerprint(ce.model)


def test_torch_int8_quantises_a_copy_and_follows_weight_changes(tiny_copy, pairs):
    ce = CrossEncoder(tiny_copy, backend="torch", precision="int8")
    assert ce.precision == "int8" and ce.inference_backend.lossy
    module = ce.inference_backend.module
    assert module is not ce.model
    assert any("quantized" in type(m).__module__ for m in module.modules())
    assert type(module.classifier).__name__ == "Linear"  # the head stays fp32
    fp32 = CrossEncoder(tiny_copy).predict(pairs)
    np.testing.assert_allclose(ce.predict(pairs), fp32, atol=0.05)
    with torch.no_grad():  # an in-place change, as an optimizer step makes
        for p in ce.model.bert.encoder.parameters():
            p.mul_(1.5)
    after = ce.predict(pairs)
    assert ce.inference_backend.module is not module  # quantised again
    # the same batches through a copy quantised from the new weights (dynamic int8 scales
    # activations per batch, so scores depend on the batching: compare like with like)
    ce.inference_backend = TorchBackend(ce.model, ce.device, "int8")
    np.testing.assert_allclose(after, ce.predict(pairs), atol=1e-6)


# ---------------------------------------------------------------------------------- onnx
def test_onnx_missing_names_the_extra(tiny_copy, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    with pytest.raises(ImportError, match=r"pip install crossrank\[onnx\]"):
        CrossEncoder(tiny_copy, backend="onnx")


def test_onnx_export_is_cached_beside_the_model_and_matches_torch(tiny_copy, pairs):
    needs_onnx()
    torch_scores = CrossEncoder(tiny_copy).predict(pairs)
    ce = CrossEncoder(tiny_copy, backend="onnx")
    assert isinstance(ce.inference_backend, OnnxBackend) and ce.precision == "fp32"
    onnx_file = tiny_copy / "onnx" / "model.onnx"
    assert onnx_file.exists() and (tiny_copy / "onnx" / "export.json").exists()
    np.testing.assert_allclose(ce.predict(pairs), torch_scores, atol=1e-5)
    mtime = onnx_file.stat().st_mtime_ns
    again = CrossEncoder(tiny_copy, backend="onnx")  # a current export is reused, not made again
    assert onnx_file.stat().st_mtime_ns == mtime
    np.testing.assert_allclose(again.predict(pairs), torch_scores, atol=1e-5)


def test_auto_uses_onnx_only_when_exported_and_measured_faster(tiny_copy, monkeypatch):
    needs_onnx()
    CrossEncoder(tiny_copy, backend="onnx")  # makes the export
    monkeypatch.setattr(selection, "onnx_timings", lambda ce, b, refresh=False: {"torch_fp32": 100.0, "onnx_fp32": 150.0})
    assert CrossEncoder(tiny_copy).backend == "onnx"
    monkeypatch.setattr(selection, "onnx_timings", lambda ce, b, refresh=False: {"torch_fp32": 100.0, "onnx_fp32": 105.0})
    ce = CrossEncoder(tiny_copy)
    assert ce.backend == "torch" and "1.05x" in ce.inference_backend.reason
    # other weights (a different seed's head on a base model would do the same): the export is stale
    monkeypatch.setattr(selection, "onnx_timings", lambda ce, b, refresh=False: {"torch_fp32": 100.0, "onnx_fp32": 150.0})
    other = CrossEncoder(tiny_copy, num_labels=1, seed=3)
    with torch.no_grad():
        other.model.classifier.weight.add_(1.0)
    other.set_backend()
    assert other.backend == "torch" and "stale" in other.inference_backend.reason


def test_onnx_session_falls_back_to_torch_when_weights_change(tiny_copy, caplog, pairs):
    needs_onnx()
    ce = CrossEncoder(tiny_copy, backend="onnx")
    ce.predict(pairs)
    with torch.no_grad():
        ce.model.classifier.weight.mul_(-1)
    with caplog.at_level(logging.WARNING):
        scores = ce.predict(pairs)
    assert ce.backend == "torch" and "weights changed" in caplog.text
    np.testing.assert_allclose(scores, _torch_scores(ce, pairs), atol=1e-5)


def _torch_scores(ce, pairs):
    with torch.inference_mode():
        return ce.model(**ce.features([q for q, _ in pairs], [p for _, p in pairs])).logits[:, 0].numpy()


def test_onnx_int8_export(tiny_copy, pairs):
    needs_onnx()
    ce = CrossEncoder(tiny_copy, backend="onnx", precision="int8")
    assert (tiny_copy / "onnx" / "model_int8.onnx").exists() and ce.inference_backend.lossy
    np.testing.assert_allclose(ce.predict(pairs), CrossEncoder(tiny_copy).predict(pairs), atol=0.05)


# ---------------------------------------------------------------------------------- fidelity
def test_overlap_and_ndcg_comparison_by_hand():
    ref = {"q1": {f"d{i}": float(20 - i) for i in range(20)}, "q2": {f"d{i}": float(i) for i in range(20)}}
    same = {q: dict(s) for q, s in ref.items()}
    assert top_k_overlap(ref, same) == 1.0
    swapped = {"q1": dict(ref["q1"]), "q2": dict(ref["q2"])}
    swapped["q1"]["d9"], swapped["q1"]["d10"] = swapped["q1"]["d10"], swapped["q1"]["d9"]  # 10th and 11th trade places
    assert top_k_overlap(ref, swapped) == pytest.approx((0.9 + 1.0) / 2)
    qrels = {"q1": {"d0": 2, "d10": 3}, "q2": {"d19": 1}}
    ndcg_ref, ndcg_same, overlap = compare_runs(ref, same, qrels)
    assert ndcg_ref == ndcg_same and overlap == 1.0 and 0 < ndcg_ref < 1
    ndcg_ref, ndcg_swapped, _ = compare_runs(ref, swapped, qrels)
    assert ndcg_swapped > ndcg_ref  # d10 (grade 3) entered the top 10


def test_fidelity_of_fp32_against_fp32_is_exact_and_recorded(tiny_copy, dl19):
    ce = CrossEncoder(tiny_copy)
    report = check_fidelity(ce, "torch", "fp32", FidelityConfig(dl19, queries=5))
    assert report.queries == 5 and report.pairs == 500
    assert report.ndcg_diff == 0.0 and report.overlap == 1.0 and report.passed
    assert 0 < report.ndcg_fp32 < 1 and report.ndcg == report.ndcg_fp32  # computed, not a constant
    assert report.pairs_per_second > 0 and "PASS" in report.summary()
    assert passing_record(ce, "torch", "fp32")["ndcg"] == report.ndcg
    assert (ce.backend, ce.precision) == ("torch", "fp32")  # restored


def test_fidelity_fails_a_changed_ranking_and_gates_the_warning(tiny_copy, dl19, caplog):
    ce = CrossEncoder(tiny_copy)
    # the tiny random model's scores are nearly tied, so int8 noise reorders its top 10
    strict = check_fidelity(ce, "torch", "int8", FidelityConfig(dl19, queries=5))
    assert not strict.passed and strict.overlap < 0.95 and strict.precision == "int8"
    assert passing_record(ce, "torch", "int8") is None
    with caplog.at_level(logging.WARNING):
        CrossEncoder(tiny_copy, backend="torch", precision="int8")
    assert "no passing fidelity check" in caplog.text
    loose = check_fidelity(ce, "torch", "int8", FidelityConfig(dl19, queries=5, max_ndcg_diff=1.0, min_overlap=0.0))
    assert loose.passed and loose.ndcg_diff == pytest.approx(strict.ndcg_diff, abs=1e-9)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        CrossEncoder(tiny_copy, backend="torch", precision="int8")
    assert "no passing fidelity check" not in caplog.text
    # a record holds for the weights it was made with only
    other = CrossEncoder(tiny_copy, backend="torch", precision="fp32")
    with torch.no_grad():
        other.model.classifier.bias.add_(1.0)
    assert passing_record(other, "torch", "int8") is None


def test_fidelity_check_names_missing_data(tiny_copy, tmp_path):
    with pytest.raises(FileNotFoundError, match="trec-dl19"):
        check_fidelity(CrossEncoder(tiny_copy), "torch", "int8", FidelityConfig(tmp_path / "nowhere"))


# ---------------------------------------------------------------------------------- CLI
def test_cli_export_end_to_end(tiny_copy, data_dir, capsys):
    needs_onnx()
    from crossrank.cli.main import main

    rc = main(["export", "--model", str(tiny_copy), "--precision", "int8"])
    out = capsys.readouterr().out
    assert rc == 0 and "model.onnx" in out and "model_int8.onnx" in out and "pairs/s" in out
    assert (tiny_copy / "onnx" / "timings.json").exists()
    rc = main(["export", "--model", str(tiny_copy), "--precision", "int8", "--check", "--data", str(data_dir), "--queries", "3"])
    out = capsys.readouterr().out
    assert rc == 1 and "FAIL: onnx int8 on 3 DL19 queries (300 pairs)" in out  # tiny random model: ties reorder
    assert (tiny_copy / "crossrank-fidelity.json").exists()
    rc = main(["export", "--model", str(tiny_copy), "--check", "--data", str(data_dir / "trec-dl19"), "--queries", "2"])
    out = capsys.readouterr().out
    assert rc == 0 and "PASS: onnx fp32" in out and "overlap 1.000" in out
    assert main(["export", "--model", str(tiny_copy), "--backend", "onnx", "--precision", "bf16"]) == 2
    assert "bf16" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- real model
@pytest.mark.slow
def test_onnx_fp32_matches_torch_on_real_dl19_pairs(minilm_ce, dl19, tmp_path):
    needs_onnx()
    from crossrank.data import Collection, load_queries, load_run

    queries = load_queries(dl19 / "queries.dl19.tsv")
    run = load_run(dl19 / "runs" / "run.dl19.bm25.top100.trec")
    collection = Collection.open(dl19 / "collection.tsv")
    qid = sorted(run)[0]
    pairs = [(queries[qid], collection[pid]) for pid in list(run[qid])[:48]]
    folder = minilm_ce.save(tmp_path / "minilm")
    torch_ce = CrossEncoder(folder, backend="torch")
    onnx_ce = CrossEncoder(folder, backend="onnx")
    assert weights_fingerprint(torch_ce.model) == weights_fingerprint(minilm_ce.model)
    np.testing.assert_allclose(onnx_ce.predict(pairs), torch_ce.predict(pairs), atol=1e-4)
    np.testing.assert_allclose(onnx_ce.predict(pairs), minilm_ce.predict(pairs), atol=1e-4)

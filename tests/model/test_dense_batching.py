"""The bi-encoder's batches: cut by a token budget, longest first, input order restored, the same
vectors as one text at a time; and its bf16 copy where that way is chosen (real DL19 passages)."""
from __future__ import annotations

import numpy as np
import pytest

from crossrank.model.backends.bf16_weights import Bf16Variant
from crossrank.model.dense import DenseEncoder


@pytest.fixture(scope="module")
def passages(data_dir):
    from crossrank.data import Collection, load_run

    dl19 = data_dir / "trec-dl19"
    run = load_run(dl19 / "runs" / "run.dl19.bm25.top100.trec")
    collection = Collection.open(dl19 / "collection.tsv")
    qid = sorted(run)[0]
    return [collection[d] for d in list(run[qid])[:60]] + ["short", "a"]


def shapes_of(encoder: DenseEncoder, texts) -> tuple[np.ndarray, list[tuple[int, int]]]:
    seen = []
    forward = encoder.model.forward

    def spy(**features):
        seen.append(tuple(features["input_ids"].shape))
        return forward(**features)

    encoder.model.forward = spy
    try:
        return encoder.encode(texts, show_progress=False), seen
    finally:
        del encoder.model.forward


def test_token_budget_batches_give_the_vectors_of_one_text_at_a_time(minilm_dir, passages):
    encoder = DenseEncoder(minilm_dir, max_length=128, max_tokens_per_batch=512)
    vectors, shapes = shapes_of(encoder, passages)
    assert all(rows * width <= 512 for rows, width in shapes) and sum(r for r, _ in shapes) == len(passages)
    assert [w for _, w in shapes] == sorted((w for _, w in shapes), reverse=True)  # longest first
    assert max(w for _, w in shapes) == 128 and len(shapes) > 4  # some passages reach max_length
    single = np.stack([DenseEncoder.encode(encoder, [t], batch_size=1, show_progress=False)[0] for t in passages[:12]])
    np.testing.assert_allclose(vectors[:12], single, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_default_budget_on_cpu_and_bad_budget(minilm_dir):
    assert DenseEncoder(minilm_dir).max_tokens_per_batch == 2048
    with pytest.raises(ValueError, match="max_tokens_per_batch must be >= 1"):
        DenseEncoder(minilm_dir, max_tokens_per_batch=0)


@pytest.mark.parametrize("weights", [True, False])
def test_bf16_runs_the_measured_way_and_keeps_the_cosines(minilm_dir, passages, monkeypatch, tmp_path, weights):
    from crossrank.model.backends import bf16_weights

    monkeypatch.setenv("CROSSRANK_CACHE", str(tmp_path))
    monkeypatch.setattr(bf16_weights, "choose_bf16_variant", lambda model, refresh=False: Bf16Variant(weights, "test", 1.2))
    exact = DenseEncoder(minilm_dir, max_length=128).encode(passages, show_progress=False)
    half = DenseEncoder(minilm_dir, max_length=128, precision="bf16")
    assert half.bf16_weights is weights and half.identity().endswith("bf16-weights" if weights else "|bf16")
    vectors = half.encode(passages, show_progress=False)
    assert (vectors * exact).sum(1).min() > 0.999


def test_openvino_f32_gives_torch_vectors_and_bf16_keeps_them_close(minilm_dir, passages):
    pytest.importorskip("openvino")
    from crossrank.model.backends.openvino_backend import openvino_bf16_supported

    exact = DenseEncoder(minilm_dir, max_length=128)
    ov = DenseEncoder(minilm_dir, max_length=128, backend="openvino")
    assert (exact.backend, ov.backend) == ("torch", "openvino") and "OpenVINO (requested)" in ov.precision_reason
    assert ov.identity() != exact.identity()  # a vector cache never mixes them
    reference = exact.encode(passages, show_progress=False)
    np.testing.assert_allclose(ov.encode(passages, show_progress=False), reference, atol=1e-4)
    if openvino_bf16_supported():
        half = DenseEncoder(minilm_dir, max_length=128, precision="bf16", backend="openvino")
        assert (half.encode(passages, show_progress=False) * reference).sum(1).min() > 0.999
        # torch's ways of running bf16 are neither timed nor named for OpenVINO
        assert not half.bf16_weights and half.identity().endswith("|bf16|openvino") and "weights" not in half.precision_reason


@pytest.mark.parametrize("openvino_seconds, expected", [(0.5, "openvino"), (1.0, "torch")])
def test_auto_backend_follows_the_measurement(minilm_dir, monkeypatch, tmp_path, openvino_seconds, expected):
    pytest.importorskip("openvino")
    from crossrank.model.backends import precision
    from crossrank.model.backends.base import update_json

    monkeypatch.setenv("CROSSRANK_CACHE", str(tmp_path))
    probe = DenseEncoder(minilm_dir, max_length=128)
    key = precision.cache_key(probe.model, probe.device, 16, 128, "dense-openvino-fp32")
    update_json(tmp_path / precision.CACHE_FILE, key, {"seconds": {"torch": 1.0, "openvino": openvino_seconds}})
    auto = DenseEncoder(minilm_dir, max_length=128, backend="auto")
    assert auto.backend == expected and "cached measurement" in auto.precision_reason
    assert ("measured 2.00x torch" in auto.precision_reason) == (expected == "openvino")


def test_openvino_missing_names_the_extra(minilm_dir, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(ImportError, match=r"pip install crossrank\[openvino\]"):
        DenseEncoder(minilm_dir, backend="openvino")
    assert DenseEncoder(minilm_dir, backend="auto").backend == "torch"

"""Precision chosen by timing the model: the rule, the cache keyed by host, and a real measurement."""
from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from crossrank.model.backends import precision as P
from crossrank.model.backends.base import read_json


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSRANK_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=2000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=1)
    return BertForSequenceClassification(config)


class FakeTimer:
    """seconds per step for each precision; counts the calls."""

    def __init__(self, **seconds):
        self.seconds = seconds
        self.calls: list[str] = []

    def __call__(self, precision: str) -> float:
        self.calls.append(precision)
        return self.seconds[precision]


def test_fp32_is_chosen_when_bf16_is_slower(tiny):
    timer = FakeTimer(fp32=1.0, bf16=1.6)
    choice = P.choose_precision(tiny, rows=8, width=32, mode="train", measure=timer)
    assert choice.precision == "fp32"
    assert "no half precision measured" in choice.reason and not choice.cached
    assert choice.seconds == {"fp32": 1.0, "bf16": 1.6}
    assert timer.calls == ["fp32", "bf16"] * 4  # warm-up, then 3 alternating rounds


def test_bf16_is_chosen_only_when_clearly_faster_and_allowed(tiny):
    fast = P.choose_precision(tiny, rows=8, width=32, mode="train", measure=FakeTimer(fp32=1.0, bf16=0.5))
    assert fast.precision == "bf16" and "2.00x fp32" in fast.reason and fast.speedup("bf16") == pytest.approx(2.0)
    noise = P.choose_precision(tiny, rows=8, width=16, mode="train", measure=FakeTimer(fp32=1.0, bf16=0.95))
    assert noise.precision == "fp32"  # 5% is within noise: MIN_SPEEDUP
    exact = P.choose_precision(tiny, rows=8, width=24, mode="inference", allowed=("fp32",), measure=FakeTimer(fp32=1.0, bf16=0.5))
    assert exact.precision == "fp32" and "only exact fp32 allowed" in exact.reason


def test_missing_kernels_count_as_infinitely_slow(tiny):
    def measure(p):
        if p == "bf16":
            raise RuntimeError("no bf16 kernel")
        return 1.0

    choice = P.choose_precision(tiny, rows=4, width=16, measure=measure)
    assert choice.precision == "fp32" and choice.seconds["bf16"] == float("inf")


def test_choice_is_cached_per_host_and_shape(tiny, tmp_path, monkeypatch):
    timer = FakeTimer(fp32=1.0, bf16=0.5)
    first = P.choose_precision(tiny, rows=8, width=32, measure=timer)
    calls = len(timer.calls)
    again = P.choose_precision(tiny, rows=8, width=32, measure=timer)
    assert again.cached and again.precision == first.precision and len(timer.calls) == calls  # not measured again
    # an inference caller that allows only fp32 reads the same cached timings but decides for itself
    assert P.choose_precision(tiny, rows=8, width=32, mode="train", allowed=("fp32",), measure=timer).precision == "fp32"

    P.choose_precision(tiny, rows=16, width=32, measure=timer)  # another batch shape: measured
    assert len(timer.calls) == 2 * calls

    monkeypatch.setattr(P, "host_key", lambda extra="": "another-host")  # another host kind: measured again
    other = P.choose_precision(tiny, rows=8, width=32, measure=FakeTimer(fp32=1.0, bf16=2.0))
    assert not other.cached and other.precision == "fp32"
    keys = list(read_json(tmp_path / "cache" / P.CACHE_FILE))
    assert len(keys) == 3 and sum(k.startswith("another-host|") for k in keys) == 1
    assert all("|bert/2/32/2/64|" in k for k in keys)


def test_real_measurement_times_both_precisions_and_leaves_the_model_as_it_was(tiny):
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    tiny.eval()
    choice = P.choose_precision(tiny, rows=4, width=24, mode="train", rounds=1)
    assert set(choice.seconds) == {"fp32", "bf16"} and all(t > 0 for t in choice.seconds.values())
    assert choice.precision in ("fp32", "bf16")
    assert not tiny.training and all(p.grad is None for p in tiny.parameters())
    assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items())


def test_bad_arguments_are_refused(tiny):
    with pytest.raises(ValueError, match="mode in"):
        P.choose_precision(tiny, rows=4, width=16, mode="serve")
    with pytest.raises(ValueError, match="rows >= 1"):
        P.choose_precision(tiny, rows=0, width=16)

"""Precision chosen by timing the model: the rule, the cache keyed by host, and a real measurement."""
from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from crossrank.model.backends import precision as P
from crossrank.model.backends.base import read_json, update_json


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


def test_real_inference_measurement_times_both_precisions_and_leaves_the_model_as_it_was(tiny):
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    tiny.train()
    choice = P.choose_precision(tiny, rows=4, width=24, mode="inference", rounds=1)
    assert set(choice.seconds) == {"fp32", "bf16"} and all(t > 0 for t in choice.seconds.values())
    assert choice.precision in ("fp32", "bf16")
    assert tiny.training and all(p.grad is None for p in tiny.parameters())
    assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items())


def test_bad_arguments_are_refused(tiny):
    with pytest.raises(ValueError, match="mode in"):
        P.choose_precision(tiny, rows=4, width=16, mode="serve")
    with pytest.raises(ValueError, match="rows >= 1"):
        P.choose_precision(tiny, rows=0, width=16)
    with pytest.raises(ValueError, match="needs `measure`.*choose_train_precision"):
        P.choose_precision(tiny, rows=4, width=16, mode="train")  # training steps are timed by crossrank.training.precision


class RoundTimer:
    """seconds per call for each precision, taken in turn from a list (the last repeated); counts the calls."""

    def __init__(self, **seconds):
        self.seconds = {p: list(ts) for p, ts in seconds.items()}
        self.calls: list[str] = []

    def __call__(self, precision: str) -> float:
        self.calls.append(precision)
        ts = self.seconds[precision]
        return ts.pop(0) if len(ts) > 1 else ts[0]


def quiet():
    return lambda: 0.0


def busy():
    return lambda: 0.8


def cached_keys():
    return list(read_json(P.cache_dir() / P.CACHE_FILE))


def test_the_median_round_decides_not_the_fastest(tiny):
    # warm-up, then 3 rounds: one lucky bf16 round (0.85 s) would make bf16 1.18x fp32 if the best round counted
    timer = RoundTimer(fp32=[2.0, 1.0, 1.0, 1.0], bf16=[2.0, 0.85, 1.0, 1.0])
    choice = P.choose_precision(tiny, rows=8, width=32, measure=timer, load_probe=quiet)
    assert choice.precision == "fp32" and choice.seconds == {"fp32": 1.0, "bf16": 1.0}
    assert choice.min_seconds == {"fp32": 1.0, "bf16": 0.85} and choice.rounds == 3
    assert len(timer.calls) == 8 and not choice.noisy  # rounds agreed well enough: measured once
    assert "median of 3 rounds" in choice.reason
    entry = read_json(P.cache_dir() / P.CACHE_FILE)[cached_keys()[0]]
    assert entry["seconds"] == {"fp32": 1.0, "bf16": 1.0} and entry["min_seconds"]["bf16"] == 0.85


def test_disagreeing_rounds_are_measured_again_with_more_rounds(tiny):
    # the first attempt's rounds disagree (fp32/bf16 ratio 2.0, 1.0, 2.0); the second's 6 rounds agree
    timer = RoundTimer(fp32=[1.0], bf16=[1.0, 0.5, 1.0, 0.5] + [0.5] * 6)
    choice = P.choose_precision(tiny, rows=8, width=32, measure=timer, load_probe=quiet)
    assert timer.calls.count("fp32") == timer.calls.count("bf16") == 1 + 3 + 6  # warm-up once, then 3, then 6 rounds
    assert choice.rounds == 6 and choice.precision == "bf16" and not choice.noisy
    assert len(cached_keys()) == 1  # the agreeing measurement is kept


def test_rounds_that_never_agree_stop_after_three_attempts_and_are_not_cached(tiny):
    timer = RoundTimer(fp32=[1.0], bf16=[1.0] + [0.5, 1.0] * 50)  # every attempt alternates 2.0x and 1.0x
    choice = P.choose_precision(tiny, rows=8, width=32, measure=timer, load_probe=quiet)
    assert timer.calls.count("bf16") == 1 + 3 + 6 + 9  # bounded: three attempts in all
    assert choice.noisy and not choice.cached and choice.rounds == 9
    assert "rounds disagreed after 3 attempts" in choice.reason and "not cached" in choice.reason
    assert cached_keys() == []


def test_a_wide_spread_of_one_candidate_counts_as_disagreement():
    assert "fp32 rounds spread 2.00x" in P.rounds_disagree({"fp32": [1.0, 2.0, 1.0], "bf16": [2.0, 4.0, 2.0]})
    assert P.rounds_disagree({"fp32": [1.0, 1.1, 1.0], "bf16": [0.5, 0.55, 0.5]}) == ""
    assert P.rounds_disagree({"fp32": [1.0, 1.0], "bf16": []}) == ""  # a candidate that cannot run


def test_a_measurement_under_load_is_used_but_not_cached(tiny):
    # the real failure: a busy neighbour made bf16 look slower; the choice holds for this run only
    timer = FakeTimer(fp32=1.50, bf16=1.93)
    choice = P.choose_precision(tiny, rows=8, width=32, measure=timer, load_probe=busy)
    assert choice.precision == "fp32" and choice.noisy and not choice.cached and choice.other_cores == 0.8
    assert "measured under load (other processes used 0.80 cores)" in choice.reason and "not cached" in choice.reason
    assert cached_keys() == []
    calls = len(timer.calls)
    again = P.choose_precision(tiny, rows=8, width=32, measure=FakeTimer(fp32=1.0, bf16=0.57), load_probe=quiet)
    assert len(timer.calls) == calls and not again.cached and again.precision == "bf16"  # measured afresh, quiet
    assert not again.noisy and len(cached_keys()) == 1


def test_a_quiet_agreeing_measurement_is_cached_and_read_back(tiny):
    timer = FakeTimer(fp32=1.0, bf16=0.5)
    first = P.choose_precision(tiny, rows=8, width=32, measure=timer, load_probe=quiet)
    assert not first.noisy and not first.cached and first.other_cores == 0.0
    entry = read_json(P.cache_dir() / P.CACHE_FILE)[cached_keys()[0]]
    assert entry["rounds"] == 3 and entry["other_cores"] == 0.0 and entry["min_seconds"] == {"fp32": 1.0, "bf16": 0.5}
    calls = len(timer.calls)
    again = P.choose_precision(tiny, rows=8, width=32, measure=timer, load_probe=busy)  # not measured: load unread
    assert again.cached and not again.noisy and again.precision == "bf16" and len(timer.calls) == calls
    assert again.rounds == 3 and again.min_seconds == {"fp32": 1.0, "bf16": 0.5}


def test_an_entry_cached_by_older_code_is_still_read(tiny):
    key = P.cache_key(tiny, torch.device("cpu"), 8, 32, "train")
    update_json(P.cache_dir() / P.CACHE_FILE, key, {"seconds": {"fp32": 1.0, "bf16": 0.4}, "rows": 8, "width": 32,
                                                    "mode": "train", "device": "cpu", "measured": "2024-01-01"})

    def never(p):
        raise AssertionError("measured although cached")

    choice = P.choose_precision(tiny, rows=8, width=32, measure=never)
    assert choice.cached and choice.precision == "bf16" and choice.seconds == {"fp32": 1.0, "bf16": 0.4}
    assert choice.rounds == 0 and choice.min_seconds == {} and not choice.noisy and choice.other_cores is None


def test_host_load_probe_counts_other_processes_and_copes_without_proc(monkeypatch):
    busy_seconds, clock = iter([100.0, 103.0]), iter([10.0, 12.0])
    own = iter([5.0, 6.4])  # this process used 1.4 of the 3 busy CPU seconds over 2 s of wall time
    stop = P.host_load_probe(busy_seconds=lambda: next(busy_seconds), clock=lambda: next(clock), own_seconds=lambda: next(own))
    assert stop() == pytest.approx(0.8)
    assert P.host_load_probe(busy_seconds=lambda: None)() is None
    assert P.host_load_probe()() is None  # far too short for /proc/stat's clock ticks to tell

    def no_proc(*args, **kwargs):
        raise FileNotFoundError("/proc/stat")

    monkeypatch.setattr(P, "open", no_proc, raising=False)  # a host without /proc
    assert P._machine_busy_seconds() is None
    assert P.host_load_probe(clock=iter([0.0, 100.0]).__next__)() is None


def test_unknown_load_with_agreeing_rounds_is_cached(tiny):
    P.choose_precision(tiny, rows=8, width=32, measure=FakeTimer(fp32=1.0, bf16=0.5), load_probe=lambda: (lambda: None))
    assert len(cached_keys()) == 1


def test_timing_bypasses_a_mixed_precision_wrapper_left_on_the_model(tiny):
    """After a bf16 Trainer run, accelerate's autocast wrapper stays on `forward`: timing through it would
    measure bf16 twice. The timers call the model's own forward, which computes in fp32."""
    import copy
    from types import MethodType

    plain = copy.deepcopy(tiny).eval()
    wrapped = tiny.eval()  # as accelerate's prepare_model does under native bf16 (its state is a process singleton)
    wrapped._original_forward = wrapped.forward
    wrapped.forward = MethodType(torch.autocast("cpu", dtype=torch.bfloat16)(type(wrapped).forward), wrapped)
    batch = P.timing_batch(plain, 4, 16)
    with torch.inference_mode():
        exact = plain(**batch).logits
        assert not torch.equal(wrapped(**batch).logits, exact)  # the wrapper computes in bf16
        assert torch.equal(P.own_forward(wrapped)(**batch).logits, exact)
        assert P.own_forward(plain) is plain
    assert P.step_timer(wrapped, 4, 16)("fp32") > 0

"""The training precision: each precision timed on a real training step of the model (the rule and
its cache are tests/model/test_precision.py's)."""
from __future__ import annotations

import pytest
import torch

from crossrank import CrossEncoder
from crossrank.model.backends.base import cache_dir, read_json
from crossrank.model.backends.precision import CACHE_FILE
from crossrank.training.precision import choose_train_precision, train_step_timer


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSRANK_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def tiny(tiny_model_dir):
    return CrossEncoder(tiny_model_dir).model  # loaded in eval mode


def test_real_measurement_times_both_precisions_and_leaves_the_model_as_it_was(tiny):
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    tiny.eval()
    choice = choose_train_precision(tiny, rows=4, width=24, rounds=1)
    assert set(choice.seconds) == {"fp32", "bf16"} and all(t > 0 for t in choice.seconds.values())
    assert choice.precision in ("fp32", "bf16")
    assert not tiny.training and all(p.grad is None for p in tiny.parameters())
    assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items())
    if not choice.noisy:  # a quiet measurement is kept, under the training mode
        assert all(k.endswith("|4x24|train") for k in read_json(cache_dir() / CACHE_FILE))


def test_a_training_step_runs_backward_and_drops_the_gradients(tiny):
    measure = train_step_timer(tiny, 2, 16)
    assert measure("fp32") > 0
    assert all(p.grad is None for p in tiny.parameters()) and not tiny.training  # back in eval mode

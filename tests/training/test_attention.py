"""The training step's attention kernel: sdpa and eager give the same scores and gradients on real
pairs; the faster is kept only where it wins clearly, measured like the precision (cached unless
noisy); training runs the chosen kernel and evaluation the loaded one."""
from __future__ import annotations

import json

import pytest
import torch
from transformers import TrainerCallback

from crossrank import CrossEncoder
from crossrank.model.backends.base import cache_dir, read_json
from crossrank.training.attention import (
    CACHE_FILE,
    KERNELS,
    attention_kernel,
    attention_used,
    choose_train_attention,
    set_attention_kernel,
)
from crossrank.training.config import TrainConfig
from crossrank.training.precision import train_step_timer


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSRANK_CACHE", str(tmp_path / "cache"))


def quiet():
    return lambda: 0.0


def loaded():
    return lambda: 1.5  # other processes used 1.5 cores meanwhile


def real_pairs(dev600, n=6):
    queries = [line.split("\t", 1)[1].strip() for line in (dev600 / "queries.tsv").read_text(encoding="utf-8").splitlines()[:n]]
    with open(dev600 / "collection.tsv", encoding="utf-8") as f:
        passages = [next(f).split("\t", 1)[1].strip() for _ in range(n)]
    return queries, passages


def scores_and_grads(ce, queries, passages):
    ce.model.zero_grad(set_to_none=True)
    logits = ce.forward_pairs(queries, passages, module=ce.model).squeeze(-1)
    logits.sum().backward()
    grads = {n: p.grad.clone() for n, p in ce.model.named_parameters() if p.grad is not None}
    ce.model.zero_grad(set_to_none=True)
    return logits.detach(), grads


def test_both_kernels_give_the_same_scores_and_gradients_on_real_pairs(tiny_model_dir, dev600):
    ce = CrossEncoder(tiny_model_dir, max_length=64)  # eval mode: no dropout, so both draw nothing at random
    assert attention_kernel(ce.model) == "sdpa"
    queries, passages = real_pairs(dev600)
    sdpa_scores, sdpa_grads = scores_and_grads(ce, queries, passages)
    set_attention_kernel(ce.model, "eager")
    assert attention_kernel(ce.model) == "eager"
    eager_scores, eager_grads = scores_and_grads(ce, queries, passages)
    assert sdpa_scores.std() > 0
    torch.testing.assert_close(eager_scores, sdpa_scores, atol=1e-5, rtol=1e-4)
    assert sdpa_grads.keys() == eager_grads.keys() and len(sdpa_grads) > 10
    for name in sdpa_grads:
        torch.testing.assert_close(eager_grads[name], sdpa_grads[name], atol=1e-5, rtol=1e-3)


def test_unknown_kernel_is_refused(tiny_model_dir):
    ce = CrossEncoder(tiny_model_dir)
    with pytest.raises(ValueError, match="expects one of .*'sdpa', 'eager'.* but got 'flash'"):
        set_attention_kernel(ce.model, "flash")
    with pytest.raises(ValueError, match="`attention` must be auto, sdpa or eager, but got 'flash'"):
        TrainConfig.from_dict({"model": "m", "attention": "flash"})


def fake_step(model, seconds):
    """A step timer whose time depends on the kernel the model runs (the rule's input, not its output)."""
    calls = []

    def measure(precision):
        calls.append((attention_kernel(model), precision))
        return seconds[attention_kernel(model)]

    return measure, calls


def test_eager_is_kept_where_it_wins_clearly_and_the_choice_is_cached(tiny_model_dir):
    model = CrossEncoder(tiny_model_dir).model
    measure, calls = fake_step(model, {"sdpa": 0.2, "eager": 0.1})
    choice = choose_train_attention(model, measure, precision="bf16", rows=4, width=24, rounds=2, load_probe=quiet)
    assert choice.kernel == "eager" and attention_kernel(model) == "eager" and not choice.cached
    assert {k for k, _ in calls} == set(KERNELS) and {p for _, p in calls} == {"bf16"}
    assert "2.00x sdpa" in choice.reason
    entries = read_json(cache_dir() / CACHE_FILE)
    assert len(entries) == 1 and next(iter(entries)).endswith("|4x24|train|bf16|%d trainable" % sum(p.numel() for p in model.parameters()))

    set_attention_kernel(model, "sdpa")
    calls.clear()
    again = choose_train_attention(model, measure, precision="bf16", rows=4, width=24, load_probe=quiet)
    assert again.cached and again.kernel == "eager" and not calls and attention_kernel(model) == "eager"
    # another precision is another measurement
    other = choose_train_attention(model, fake_step(model, {"sdpa": 0.1, "eager": 0.2})[0], precision="fp32", rows=4, width=24,
                                   rounds=2, load_probe=quiet)
    assert other.kernel == "sdpa" and attention_kernel(model) == "sdpa" and not other.cached


def test_a_small_win_keeps_sdpa_and_a_loaded_measurement_is_not_cached(tiny_model_dir):
    model = CrossEncoder(tiny_model_dir).model
    close, _ = fake_step(model, {"sdpa": 0.102, "eager": 0.1})
    assert choose_train_attention(model, close, precision="bf16", rows=4, width=24, rounds=2, load_probe=quiet).kernel == "sdpa"
    measure, _ = fake_step(model, {"sdpa": 0.3, "eager": 0.1})
    choice = choose_train_attention(model, measure, precision="bf16", rows=8, width=24, rounds=2, load_probe=loaded)
    assert choice.kernel == "eager" and "not cached" in choice.reason
    assert not any("|8x24|" in k for k in read_json(cache_dir() / CACHE_FILE))


def test_real_measurement_leaves_the_model_on_the_chosen_kernel(tiny_model_dir):
    model = CrossEncoder(tiny_model_dir).model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    choice = choose_train_attention(model, train_step_timer(model, 4, 24), precision="fp32", rows=4, width=24, rounds=1)
    assert choice.kernel in KERNELS and attention_kernel(model) == choice.kernel
    assert set(choice.seconds) == set(KERNELS) and all(t > 0 for t in choice.seconds.values())
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_attention_used_restores_the_kernel_after_an_error(tiny_model_dir):
    model = CrossEncoder(tiny_model_dir).model
    with pytest.raises(RuntimeError, match="inside"):
        with attention_used(model, "eager"):
            assert attention_kernel(model) == "eager"
            raise RuntimeError("inside")
    assert attention_kernel(model) == "sdpa"


class KernelSeen(TrainerCallback):
    def __init__(self):
        self.kernels = []

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.kernels.append(attention_kernel(model))


class EvaluatorSpy:
    """The real evaluator, noting the kernel each evaluation ran on."""

    def __init__(self, inner):
        self.inner, self.kernels = inner, []

    def __call__(self, cross_encoder):
        self.kernels.append(attention_kernel(cross_encoder.model))
        return self.inner(cross_encoder)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_training_runs_the_chosen_kernel_and_evaluation_the_loaded_one(tiny_model_dir, dev600_data, tmp_path):
    from crossrank.training.datasets import build_evaluator
    from crossrank.training.trainer import train

    config = TrainConfig.from_dict({
        "model": str(tiny_model_dir), "output_dir": str(tmp_path / "out"), "loss": "listnet", "batch_size": 2, "max_steps": 4,
        "save_steps": 2, "logging_steps": 1, "max_length": 64, "precision": "fp32", "attention": "eager",
        "data": {"format": "lists", "num_negatives": 3, **dev600_data},
        "eval": {**dev600_data, "split_name": "tune", "depth": 5, "steps": 2},
    })
    seen, spy = KernelSeen(), EvaluatorSpy(build_evaluator(config.eval))
    result = train(config, evaluator=spy, callbacks=[seen], verbose=False)
    assert seen.kernels == ["eager"] * 4
    assert spy.kernels == ["sdpa", "sdpa"]
    assert [h["step"] for h in result.log_history if "eval_nDCG@10" in h] == [2, 4]
    diagnostics = json.loads((tmp_path / "out" / "diagnostics.json").read_text())
    assert diagnostics["attention"] == "eager" and diagnostics["attention_reason"] == "set in the config"
    assert attention_kernel(CrossEncoder(result.model_dir).model) == "sdpa"

"""The training precision, chosen by timing the model's own training step in each precision.

A training step is a forward and a backward pass; each precision the device supports is timed on
a batch of the shape training will run, and the fastest is kept where it beats fp32 clearly
(`crossrank.model.backends.precision.choose_precision`: the rule, the noise guards and the cache
in $CROSSRANK_CACHE/precision.json, shared with the inference measurement).
"""
from __future__ import annotations

import time
from collections.abc import Iterable

import torch

from crossrank.model.backends.precision import (
    MAX_ATTEMPTS,
    LoadProbe,
    Measure,
    PrecisionChoice,
    autocast,
    choose_precision,
    own_forward,
    timing_batch,
)


def resolve_train_precision(setting: str, model: torch.nn.Module, *, rows: int, width: int) -> tuple[str, str]:
    """The precision a training run uses and why: `setting` (auto, fp32, bf16, fp16), measured where auto."""
    if setting != "auto":
        return setting, "set in the config"
    choice = choose_train_precision(model, rows=rows, width=width)
    if choice.precision == "fp16" and next(model.parameters()).device.type != "cuda":
        return "fp32", choice.reason
    return choice.precision, f"measured on {rows} x {width}-token training steps: {choice.reason}"


def choose_train_precision(model: torch.nn.Module, *, rows: int, width: int, allowed: Iterable[str] | None = None,
                           refresh: bool = False, rounds: int = 3, load_probe: LoadProbe | None = None,
                           attempts: int = MAX_ATTEMPTS) -> PrecisionChoice:
    """The fastest allowed precision (default: every supported one) for `rows` x `width`-token
    training steps of `model`, measured once per host kind and shape (see `choose_precision`)."""
    return choose_precision(model, rows=rows, width=width, mode="train", allowed=allowed, measure=train_step_timer(model, rows, width),
                            refresh=refresh, rounds=rounds, load_probe=load_probe, attempts=attempts)


def train_step_timer(model: torch.nn.Module, rows: int, width: int) -> Measure:
    """A `measure(precision) -> seconds` that runs one training step (forward + backward) of `model`
    on random tokens; the gradients are dropped and the train/eval mode is restored afterwards.
    The batch is made at the first call (a cached choice never times)."""
    device = next(model.parameters()).device
    made: list[dict[str, torch.Tensor]] = []

    def measure(precision: str) -> float:
        if not made:
            made.append(timing_batch(model, rows, width))
        batch = made[0]
        was_training = model.training
        model.train()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with autocast(device, precision):
            logits = own_forward(model)(**batch).logits
        logits.float().sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        return seconds

    return measure

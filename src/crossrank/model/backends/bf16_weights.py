"""bf16 on CPU, two ways: autocast (weights stay fp32 and are cast at every matmul) or a copy of the
model whose weights are cast to bf16 once. Which is faster depends on the host, so it is measured.

Autocast keeps layer norms, softmax and the element-wise work in fp32 and re-casts each weight per
call; a bf16 copy skips those casts and moves half the bytes through the element-wise ops, at a
little more rounding (every op in bf16; the logits are returned in fp32). On an Intel host with AMX
the copy measured 2.3x fp32 against autocast's 2.0x. The measurement here times both on the model's
own forward pass (16 x 128 random tokens), in alternating rounds guarded against a busy host as
`crossrank.model.backends.precision` guards its own, and caches it per host kind and model shape.
The copy is used only where it measures at least `MIN_GAIN` x autocast.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import torch

from crossrank.model.backends.path_timing import ROWS, WIDTH, PathTiming, time_paths
from crossrank.model.backends.precision import own_forward, timing_batch

logger = logging.getLogger(__name__)

#: the bf16 copy must measure at least this much faster than bf16 autocast to replace it
MIN_GAIN = 1.05
MODE = "inference-bf16-weights"


def cast_bf16(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` with every floating-point parameter and buffer in bf16, in eval mode."""
    clone = copy.deepcopy(model)
    if "_original_forward" in vars(clone):  # a trainer's mixed-precision wrapper: back to the class's own forward
        vars(clone).pop("forward", None)
        vars(clone).pop("_original_forward")
    return clone.to(torch.bfloat16).eval()


@dataclass(frozen=True)
class Bf16Variant:
    """How bf16 runs on this host: `weights` (a bf16 copy) or autocast, and the timings behind it."""

    weights: bool
    reason: str
    gain: float  # autocast seconds / bf16-copy seconds (0 where not measured)
    cached: bool = False


def choose_bf16_variant(model: torch.nn.Module, refresh: bool = False, rounds: int = 3) -> Bf16Variant:
    """Time bf16 autocast against a bf16 copy of `model` (fp32 weights, on CPU); the copy where it
    measures at least `MIN_GAIN` x autocast. Cached in $CROSSRANK_CACHE/precision.json unless noisy."""
    device = next(model.parameters()).device
    if device.type != "cpu":
        return Bf16Variant(False, f"autocast (the model runs on {device})", 0.0)
    timing = time_paths(model, MODE, lambda: _runs(model), refresh=refresh, rounds=rounds)
    return _decide(timing)


def _decide(timing: PathTiming) -> Bf16Variant:
    gain = timing.ratio("autocast", "weights")
    use = gain >= MIN_GAIN
    verdict = f"bf16 weights measured {gain:.2f}x autocast" if gain else "bf16 weights could not run"
    reason = f"{verdict} ({timing.describe()}): {'weights cast once' if use else 'autocast'}"
    return Bf16Variant(use, reason, gain, timing.cached)


def _runs(model: torch.nn.Module) -> dict:
    """One forward pass each: "autocast" on `model`, "weights" on its bf16 copy (random tokens, inference mode)."""
    batch = timing_batch(model, ROWS, WIDTH)
    modules = {"autocast": own_forward(model), "weights": own_forward(cast_bf16(model))}

    def run(variant: str):
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "autocast"):
                modules[variant](**batch)
        finally:
            model.train(was_training)

    return {name: (lambda name=name: run(name)) for name in modules}

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
import time
from dataclasses import dataclass

import torch

from crossrank.model.backends.base import cache_dir, cpu_info, read_json, update_json
from crossrank.model.backends.precision import CACHE_FILE, cache_key, measure_precisions, own_forward, timing_batch

logger = logging.getLogger(__name__)

#: the bf16 copy must measure at least this much faster than bf16 autocast to replace it
MIN_GAIN = 1.05
ROWS, WIDTH = 16, 128
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
    key = cache_key(model, device, ROWS, WIDTH, MODE)
    path = cache_dir() / CACHE_FILE
    entry = read_json(path).get(key)
    if not refresh and isinstance(entry, dict) and _timed(entry.get("seconds")):
        return _decide(entry["seconds"], cached=True)
    timings = measure_precisions(_timer(model), ["autocast", "weights"], rounds)
    seconds, noise = timings.median, timings.noise()
    if noise:
        logger.warning("bf16 autocast vs bf16 weights measurement is noisy, used for this run only and not cached: %s", noise)
    else:
        update_json(path, key, {"seconds": seconds, "rounds": timings.rounds, "other_cores": timings.other_cores,
                                "rows": ROWS, "width": WIDTH, "mode": MODE, "host": cpu_info(),
                                "measured": time.strftime("%Y-%m-%d %H:%M:%S")})
    return _decide(seconds, cached=False)


def _timed(seconds) -> bool:
    return isinstance(seconds, dict) and all(isinstance(seconds.get(k), (int, float)) for k in ("autocast", "weights"))


def _decide(seconds: dict, cached: bool) -> Bf16Variant:
    auto, weights = float(seconds["autocast"]), float(seconds["weights"])
    gain = auto / weights if 0 < weights < float("inf") and auto < float("inf") else 0.0
    shown = f"autocast {auto:.3f}s, bf16 weights {weights:.3f}s per 16 x 128-token forward pass"
    use = gain >= MIN_GAIN
    verdict = f"bf16 weights measured {gain:.2f}x autocast" if gain else "bf16 weights could not run"
    reason = f"{verdict} ({shown}): {'weights cast once' if use else 'autocast'}" + ("; cached measurement" if cached else "")
    return Bf16Variant(use, reason, gain, cached)


def _timer(model: torch.nn.Module):
    """`measure(variant) -> seconds` of one forward pass: "autocast" on `model`, "weights" on its bf16 copy."""
    batch = timing_batch(model, ROWS, WIDTH)
    modules = {"autocast": own_forward(model), "weights": own_forward(cast_bf16(model))}

    def measure(variant: str) -> float:
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "autocast"):
                start = time.perf_counter()
                modules[variant](**batch)
                return time.perf_counter() - start
        finally:
            model.train(was_training)

    return measure

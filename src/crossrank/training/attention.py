"""The attention kernel of a training step, chosen by timing the model's own step with each.

transformers runs attention either as PyTorch's fused kernel (`sdpa`, what crossrank loads) or as
the architecture's matmul-softmax-matmul (`eager`). Both compute the same function; only the speed
differs, and it differs by host and precision. On a 2-core AMD CPU with AVX512-BF16, a bf16 training
step of MiniLM (16 x 96 tokens) ran 1.14x faster eager: the fused kernel's bf16 backward took 3x
the eager one. In fp32 the fused kernel was faster. So the kernel is measured, as the precision is
(`crossrank.model.backends.precision`: alternating rounds, medians, measured again while rounds
disagree, never cached under load), and evaluation and saved models keep `sdpa`.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from crossrank.model.backends.base import cache_dir, cpu_info, read_json, update_json
from crossrank.model.backends.precision import (
    MAX_ATTEMPTS,
    LoadProbe,
    cache_key,
    measure_precisions,
)

logger = logging.getLogger(__name__)

KERNELS = ("sdpa", "eager")
CACHE_FILE = "attention.json"
#: eager is kept only where its median step beats sdpa's by this much (both are exact; this damps noise)
MIN_SPEEDUP = 1.05


@dataclass(frozen=True)
class AttentionChoice:
    """The chosen kernel, why, and each candidate's median seconds per training step."""

    kernel: str
    reason: str
    seconds: dict[str, float] = field(default_factory=dict)
    cached: bool = False


def attention_kernel(model: torch.nn.Module) -> str:
    """The attention kernel a transformers model runs now ("" for a module without one)."""
    config = getattr(model, "config", None)
    return str(getattr(config, "_attn_implementation", "") or "")


def set_attention_kernel(model: torch.nn.Module, kernel: str) -> None:
    """Switch a transformers model's attention kernel (its weights are untouched)."""
    if kernel not in KERNELS:
        raise ValueError(f"set_attention_kernel expects one of {KERNELS}, but got {kernel!r}")
    if attention_kernel(model) != kernel:
        model.set_attn_implementation(kernel)


@contextmanager
def attention_used(model: torch.nn.Module, kernel: str) -> Iterator[None]:
    """`model` on `kernel` inside the block ("" or the current one: unchanged), its own kernel again after."""
    before = attention_kernel(model)
    if not kernel or kernel == before:
        yield
        return
    set_attention_kernel(model, kernel)
    try:
        yield
    finally:
        set_attention_kernel(model, before)


def resolve_train_attention(setting: str, model: torch.nn.Module, *, precision: str, rows: int, width: int) -> tuple[str, str]:
    """The kernel a training run uses and why: `setting` (auto, sdpa or eager) applied to `model`."""
    if setting != "auto":
        set_attention_kernel(model, setting)
        return setting, "set in the config"
    from crossrank.training.precision import train_step_timer

    choice = choose_train_attention(model, train_step_timer(model, rows, width), precision=precision, rows=rows, width=width)
    return choice.kernel, f"measured on {rows} x {width}-token {precision} training steps: {choice.reason}"


def choose_train_attention(model: torch.nn.Module, measure_step, *, precision: str, rows: int, width: int,
                           refresh: bool = False, rounds: int = 3, load_probe: LoadProbe | None = None,
                           attempts: int = MAX_ATTEMPTS) -> AttentionChoice:
    """The faster kernel for `rows` x `width`-token training steps of `model` in `precision`.

    `measure_step(precision) -> seconds` times one training step (`train_step_timer`). A model
    running another kernel (flash attention, a custom one) keeps it untimed; a kernel the architecture
    lacks is not a candidate. The model is left on the chosen kernel."""
    current = attention_kernel(model)
    if current not in KERNELS or not hasattr(model, "set_attn_implementation"):
        return AttentionChoice(current or "default", f"the model runs {current or 'its own'} attention; not timed")
    device = next(model.parameters()).device
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    key = cache_key(model, device, rows, width, f"train|{precision}|{trainable} trainable")
    path = cache_dir() / CACHE_FILE
    entry = read_json(path).get(key)
    if not refresh and isinstance(entry, dict) and _usable(entry.get("seconds")):
        choice = _decide(entry["seconds"], cached=True)
    else:
        def measure(kernel: str) -> float:
            try:
                set_attention_kernel(model, kernel)
            except (ValueError, ImportError) as exc:  # an architecture without it: not a candidate here
                raise RuntimeError(f"{kernel} attention: {exc}") from exc
            return measure_step(precision)

        timings = measure_precisions(measure, list(KERNELS), rounds, load_probe=load_probe, attempts=attempts)
        noise = timings.noise()
        if noise:
            logger.warning("attention timing is noisy, used for this run only and not cached: %s", noise)
        else:
            update_json(path, key, {"seconds": timings.median, "rounds": timings.rounds, "precision": precision, "rows": rows,
                                    "width": width, "host": cpu_info(), "measured": time.strftime("%Y-%m-%d %H:%M:%S")})
        choice = _decide(timings.median, cached=False, noise=noise)
    set_attention_kernel(model, choice.kernel)
    return choice


def _usable(seconds) -> bool:
    return isinstance(seconds, dict) and set(KERNELS) <= set(seconds) and all(isinstance(t, (int, float)) for t in seconds.values())


def _decide(seconds: dict[str, float], *, cached: bool, noise: str = "") -> AttentionChoice:
    sdpa, eager = seconds.get("sdpa", float("inf")), seconds.get("eager", float("inf"))
    speedup = sdpa / eager if eager and eager != float("inf") and sdpa != float("inf") else 0.0
    kernel = "eager" if speedup >= MIN_SPEEDUP or sdpa == float("inf") else "sdpa"
    reason = (f"eager attention {speedup:.2f}x sdpa per step (median: sdpa {sdpa:.3f}s, eager {eager:.3f}s; "
              f"eager kept from {MIN_SPEEDUP:.2f}x)")
    if cached:
        reason += "; cached measurement"
    elif noise:
        reason += f"; {noise}, not cached"
    return AttentionChoice(kernel, reason, dict(seconds), cached)

"""Choosing a precision by timing the actual model, never from a CPU flag.

Hosts differ: bf16 autocast was 2.7x faster than fp32 on one AVX512-BF16 CPU, slower on an Intel
Xeon whose flags promise the same, and 8-19x slower on AVX2-only CPUs. So the choice is measured:
a few steps of the model itself, on a batch of the shape it will run, in each precision the
device supports, alternating so that a noisy neighbour slows every candidate alike. The result is
cached per host kind (CPU model and flags, torch version and capability, threads), model shape,
batch shape and mode in $CROSSRANK_CACHE/precision.json, so the measurement runs once.

`mode="train"` times forward + backward (what a training step spends); `mode="inference"` a
forward pass under `torch.inference_mode`. Callers say which precisions they allow: training
allows every supported one; inference's default allows only the exact fp32.
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from crossrank.model.backends.base import cache_dir, cpu_info, host_key, read_json, update_json

logger = logging.getLogger(__name__)

MODES = ("train", "inference")
CACHE_FILE = "precision.json"
#: a half precision is chosen only where it measured at least this much faster than fp32
MIN_SPEEDUP = 1.10

Measure = Callable[[str], float]


@dataclass(frozen=True)
class PrecisionChoice:
    """The chosen precision, why, and the seconds per step measured for each candidate."""

    precision: str
    reason: str
    seconds: dict[str, float] = field(default_factory=dict)
    cached: bool = False

    def speedup(self, precision: str) -> float:
        """fp32 time / `precision` time (0 where it was not measured or failed)."""
        t = self.seconds.get(precision)
        base = self.seconds.get("fp32")
        return base / t if t and base and t != float("inf") else 0.0


def supported_precisions(device: torch.device) -> list[str]:
    """Precisions worth timing on `device`: fp32 always; bf16 on CPU; bf16 (where supported) and fp16 on CUDA."""
    if device.type == "cuda":
        return ["fp32"] + (["bf16"] if torch.cuda.is_bf16_supported() else []) + ["fp16"]
    if device.type == "cpu":
        return ["fp32", "bf16"]
    return ["fp32"]


def choose_precision(
    model: torch.nn.Module,
    *,
    rows: int,
    width: int,
    mode: str = "train",
    allowed: Iterable[str] | None = None,
    measure: Measure | None = None,
    refresh: bool = False,
    rounds: int = 3,
) -> PrecisionChoice:
    """Time `model` on a `rows` x `width` token batch in each supported precision; return the fastest allowed.

    `allowed` defaults to every supported precision; a half precision must beat fp32 by
    `MIN_SPEEDUP` to be chosen. `measure(precision) -> seconds` replaces the real timing (tests).
    """
    if mode not in MODES:
        raise ValueError(f"choose_precision expects mode in {MODES}, but got {mode!r}")
    if rows < 1 or width < 2:
        raise ValueError(f"choose_precision expects rows >= 1 and width >= 2, but got rows={rows}, width={width}")
    device = next(model.parameters()).device
    candidates = supported_precisions(device)
    allowed_set = set(candidates if allowed is None else allowed)
    if "fp32" not in allowed_set:
        allowed_set.add("fp32")  # the exact path is always a valid answer
    key = cache_key(model, device, rows, width, mode)
    path = cache_dir() / CACHE_FILE
    entry = read_json(path).get(key)
    if isinstance(entry, dict) and not refresh and set(candidates) <= set(entry.get("seconds", {})):
        return _decide(entry["seconds"], allowed_set, cached=True)
    if measure is None:
        measure = step_timer(model, rows, width, mode)
    seconds = time_alternating(measure, candidates, rounds)
    update_json(path, key, {"seconds": seconds, "rows": rows, "width": width, "mode": mode, "device": str(device),
                            "host": cpu_info(), "measured": time.strftime("%Y-%m-%d %H:%M:%S")})
    return _decide(seconds, allowed_set, cached=False)


def time_alternating(measure: Measure, candidates: list[str], rounds: int) -> dict[str, float]:
    """One warm-up call each, then `rounds` alternating calls; the best time of each is kept.

    A candidate whose kernels are missing (RuntimeError) gets an infinite time."""
    best = {p: float("inf") for p in candidates}
    alive = list(candidates)
    for warm in (True,) + (False,) * rounds:
        for p in list(alive):
            try:
                t = float(measure(p))
            except RuntimeError as exc:
                logger.info("precision %s cannot run here: %s", p, exc)
                alive.remove(p)
                continue
            if not warm:
                best[p] = min(best[p], t)
    return best


def _decide(seconds: dict[str, float], allowed: set[str], cached: bool) -> PrecisionChoice:
    base = seconds.get("fp32", float("inf"))
    best, best_t = "fp32", base
    for p, t in seconds.items():
        if p != "fp32" and p in allowed and t * MIN_SPEEDUP <= base and t < best_t:
            best, best_t = p, t
    shown = ", ".join(f"{p} {t:.3f}s" for p, t in seconds.items() if t != float("inf"))
    if best != "fp32":
        reason = f"{best} measured {base / best_t:.2f}x fp32 per step ({shown})"
    elif any(p != "fp32" and p in allowed for p in seconds):
        reason = f"no half precision measured >= {MIN_SPEEDUP:.2f}x fp32 per step ({shown})"
    else:
        reason = f"only exact fp32 allowed ({shown})"
    return PrecisionChoice(best, reason + ("; cached measurement" if cached else ""), dict(seconds), cached)


def cache_key(model: torch.nn.Module, device: torch.device, rows: int, width: int, mode: str) -> str:
    """Host kind + device + model shape + batch shape + mode: a measurement holds only for all of them."""
    cfg = getattr(model, "config", None)
    shape = "/".join(str(getattr(cfg, a, "?")) for a in ("model_type", "num_hidden_layers", "hidden_size",
                                                          "num_attention_heads", "intermediate_size"))
    if cfg is None:
        shape = f"{type(model).__name__}/{sum(p.numel() for p in model.parameters())}"
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    return f"{host_key(gpu)}|{device.type}|{shape}|{rows}x{width}|{mode}"


def step_timer(model: torch.nn.Module, rows: int, width: int, mode: str) -> Measure:
    """A `measure(precision) -> seconds` that runs one step of `model` on random tokens."""
    device = next(model.parameters()).device
    batch = _random_batch(model, rows, width, device)

    def measure(precision: str) -> float:
        autocast = _autocast(device, precision)
        was_training = model.training
        if mode == "train":
            model.train()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            with autocast:
                logits = model(**batch).logits
            logits.float().sum().backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start
            model.zero_grad(set_to_none=True)
        else:
            model.eval()
            with torch.inference_mode(), autocast:
                start = time.perf_counter()
                model(**batch)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                seconds = time.perf_counter() - start
        model.train(was_training)
        return seconds

    return measure


def _autocast(device: torch.device, precision: str):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _random_batch(model: torch.nn.Module, rows: int, width: int, device: torch.device) -> dict[str, torch.Tensor]:
    vocab = int(getattr(getattr(model, "config", None), "vocab_size", 1000) or 1000)
    generator = torch.Generator().manual_seed(0)
    low = min(1000, vocab - 1)
    batch = {
        "input_ids": torch.randint(low, vocab, (rows, width), generator=generator).to(device),
        "attention_mask": torch.ones(rows, width, dtype=torch.long, device=device),
    }
    if getattr(getattr(model, "config", None), "type_vocab_size", 0) >= 2:
        types = torch.zeros(rows, width, dtype=torch.long)
        types[:, width // 3:] = 1
        batch["token_type_ids"] = types.to(device)
    return batch

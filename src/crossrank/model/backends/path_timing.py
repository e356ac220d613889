"""Two or more ways of running one model's forward pass, timed against each other on this host.

The measurement is `crossrank.model.backends.precision`'s: one warm-up each, alternating rounds,
medians, more rounds while they disagree, the host's load watched; a noisy measurement decides the
call that made it only and is not cached. A clean one is cached in $CROSSRANK_CACHE/precision.json
per host kind, device, model shape and `mode`. Used for bf16 autocast against bf16 weights
(`bf16_weights`), torch against OpenVINO for the cross-encoder (`selection.openvino_speedup`) and the
bi-encoder (`crossrank.model.dense`).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from crossrank.model.backends.base import cache_dir, cpu_info, read_json, update_json
from crossrank.model.backends.precision import CACHE_FILE, cache_key, measure_precisions

logger = logging.getLogger(__name__)

ROWS, WIDTH = 16, 128


@dataclass(frozen=True)
class PathTiming:
    """Median seconds per forward pass of each way (inf where it failed), and whether they were read back."""

    seconds: dict[str, float]
    cached: bool
    noise: str = ""

    def ratio(self, base: str, other: str) -> float:
        """`base` seconds / `other` seconds: how many times faster `other` runs (0 where either did not run)."""
        b, o = self.seconds.get(base, float("inf")), self.seconds.get(other, float("inf"))
        return b / o if 0 < o < float("inf") and b < float("inf") else 0.0

    def describe(self) -> str:
        shown = ", ".join(f"{k} {v:.3f}s" for k, v in self.seconds.items() if v < float("inf"))
        return f"{shown} per {ROWS} x {WIDTH}-token forward pass" + ("; cached measurement" if self.cached else "") + (
            f"; {self.noise}, not cached" if self.noise else "")


def time_paths(model: torch.nn.Module, mode: str, make_runs: Callable[[], dict[str, Callable[[], object]]], *,
               refresh: bool = False, rounds: int = 3) -> PathTiming:
    """Time the ways `make_runs()` returns (name -> a call running one forward pass of `model`'s
    shape), or read a clean earlier measurement of the same names back; `make_runs` is called only
    when measuring (building a way may cost seconds)."""
    device = next(model.parameters()).device
    key = cache_key(model, device, ROWS, WIDTH, mode)
    path = cache_dir() / CACHE_FILE
    entry = read_json(path).get(key)
    if not refresh and isinstance(entry, dict) and isinstance(entry.get("seconds"), dict) and entry["seconds"] and all(
            isinstance(v, (int, float)) for v in entry["seconds"].values()):
        return PathTiming({k: float(v) for k, v in entry["seconds"].items()}, cached=True)
    runs = make_runs()

    def measure(name: str) -> float:
        start = time.perf_counter()
        runs[name]()
        return time.perf_counter() - start

    timings = measure_precisions(measure, list(runs), rounds)
    seconds, noise = timings.median, timings.noise()
    if noise:
        logger.warning("timing of %s is noisy, used for this run only and not cached: %s", " vs ".join(runs), noise)
    else:
        update_json(path, key, {"seconds": seconds, "rounds": timings.rounds, "other_cores": timings.other_cores,
                                "rows": ROWS, "width": WIDTH, "mode": mode, "device": str(device), "host": cpu_info(),
                                "measured": time.strftime("%Y-%m-%d %H:%M:%S")})
    return PathTiming(seconds, cached=False, noise=noise)

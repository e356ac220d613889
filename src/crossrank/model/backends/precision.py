"""Choosing a precision by timing the actual model, never from a CPU flag.

Hosts differ: bf16 autocast was 2.7x faster than fp32 on one AVX512-BF16 CPU, slower on an Intel
Xeon whose flags promise the same, and 8-19x slower on AVX2-only CPUs. So the choice is measured:
a few steps of the model itself, on a batch of the shape it will run, in each precision the
device supports. The result is cached per host kind (CPU model and flags, torch version and
capability, threads), model shape, batch shape and mode in $CROSSRANK_CACHE/precision.json, so
the measurement runs once -- which is why a measurement spoiled by a busy neighbour must not be
cached (one such, fp32 1.50 s vs bf16 1.93 s on a Xeon where bf16 is 1.75x faster when quiet,
made every later run train in the slow precision). The measurement resists noise thus:

- one warm-up call each, then `rounds` rounds alternating the candidates, so a neighbour slows
  every candidate alike; each candidate's MEDIAN round decides (the minimum is recorded beside it);
- where the rounds disagree (a candidate's slowest round > `MAX_SPREAD` x its fastest, or the
  fp32/half ratio varying across rounds by more than `RATIO_TOLERANCE`) it is measured again with
  more rounds, `MAX_ATTEMPTS` attempts in all;
- the host's load is read while measuring (`host_load_probe`: the whole machine's busy CPU time in
  /proc/stat less this process's own CPU time); where other processes used more than `LOAD_LIMIT`
  cores on average, or the rounds still disagree after the last attempt, the measurement is
  "noisy": it decides this run only, is never written to the cache, and the reason says so.
  Where /proc is missing or the measurement was too short to tell, the load counts as unknown and
  only the rounds' agreement judges it.

`mode` names what is timed and keys the cache: "inference", a forward pass under
`torch.inference_mode` (`step_timer`, the timing used when no `measure` is given), or "train",
forward + backward (what a training step spends; `crossrank.training.precision` times it and
passes the timer in). Callers say which precisions they allow: training allows every supported
one; inference's default allows only the exact fp32.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from crossrank.model.backends.base import cache_dir, cpu_info, host_key, random_batch, read_json, update_json

logger = logging.getLogger(__name__)

MODES = ("train", "inference")
CACHE_FILE = "precision.json"
#: a half precision is chosen only where it measured at least this much faster than fp32
MIN_SPEEDUP = 1.10
#: rounds disagree where a candidate's slowest round is more than this times its fastest ...
MAX_SPREAD = 1.5
#: ... or the per-round fp32/half ratio varies by more than this fraction (max ratio / min ratio - 1)
RATIO_TOLERANCE = 0.25
#: measurements in all (each with more rounds) before disagreeing rounds are accepted as noisy
MAX_ATTEMPTS = 3
#: other processes using more than this many cores on average make a measurement noisy
LOAD_LIMIT = 0.25

Measure = Callable[[str], float]
#: `probe()` starts watching the host and returns `stop`; `stop()` gives the cores other processes
#: used on average since (None where that cannot be told)
LoadProbe = Callable[[], Callable[[], "float | None"]]


@dataclass(frozen=True)
class PrecisionChoice:
    """The chosen precision, why, and the seconds per step measured for each candidate.

    `seconds` holds each candidate's median round (the best round in entries cached by older
    code), `min_seconds` its fastest round; `rounds` the rounds behind them (0 where unknown);
    `noisy` says the measurement was taken under load or its rounds disagreed, so it was not
    cached; `other_cores` the cores other processes used meanwhile (None where unknown)."""

    precision: str
    reason: str
    seconds: dict[str, float] = field(default_factory=dict)
    cached: bool = False
    noisy: bool = False
    rounds: int = 0
    min_seconds: dict[str, float] = field(default_factory=dict)
    other_cores: float | None = None

    def speedup(self, precision: str) -> float:
        """fp32 time / `precision` time (0 where it was not measured or failed)."""
        t = self.seconds.get(precision)
        base = self.seconds.get("fp32")
        return base / t if t and base and t != float("inf") else 0.0


@dataclass(frozen=True)
class Timings:
    """One measurement: each candidate's seconds per round ([] where it cannot run), the cores
    other processes used meanwhile (None where unknown) and the attempts it took."""

    samples: dict[str, list[float]]
    other_cores: float | None = None
    attempts: int = 1

    @property
    def median(self) -> dict[str, float]:
        return {p: float(statistics.median(ts)) if ts else float("inf") for p, ts in self.samples.items()}

    @property
    def minimum(self) -> dict[str, float]:
        return {p: min(ts) if ts else float("inf") for p, ts in self.samples.items()}

    @property
    def rounds(self) -> int:
        return max((len(ts) for ts in self.samples.values()), default=0)

    def disagreement(self) -> str:
        """How the rounds disagree ("" where they agree)."""
        return rounds_disagree(self.samples)

    def noise(self) -> str:
        """Why this measurement must not be cached ("" where it may be)."""
        why = []
        if self.other_cores is not None and self.other_cores > LOAD_LIMIT:
            why.append(f"measured under load (other processes used {self.other_cores:.2f} cores)")
        disagreement = self.disagreement()
        if disagreement:
            why.append(f"rounds disagreed after {self.attempts} attempt{'s' * (self.attempts > 1)} ({disagreement})")
        return "; ".join(why)


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
    load_probe: LoadProbe | None = None,
    attempts: int = MAX_ATTEMPTS,
) -> PrecisionChoice:
    """Time `model` on a `rows` x `width` token batch in each supported precision; return the fastest allowed.

    `allowed` defaults to every supported precision; a half precision must beat fp32 by
    `MIN_SPEEDUP` to be chosen. `measure(precision) -> seconds` times one step of `mode` (default,
    for "inference" only: `step_timer`; "train" steps are timed by `crossrank.training.precision`)
    and `load_probe` reads the host's load (tests; see `LoadProbe`). A noisy measurement (see the
    module's docstring) decides this call only and is not cached.
    """
    if mode not in MODES:
        raise ValueError(f"choose_precision expects mode in {MODES}, but got {mode!r}")
    if rows < 1 or width < 2:
        raise ValueError(f"choose_precision expects rows >= 1 and width >= 2, but got rows={rows}, width={width}")
    if rounds < 1 or attempts < 1:
        raise ValueError(f"choose_precision expects rounds >= 1 and attempts >= 1, but got rounds={rounds}, attempts={attempts}")
    if measure is None and mode != "inference":
        raise ValueError(f"choose_precision times inference steps itself; mode={mode!r} needs `measure`, the timer of one "
                         "such step (`crossrank.training.precision.choose_train_precision` times training steps)")
    device = next(model.parameters()).device
    candidates = supported_precisions(device)
    allowed_set = set(candidates if allowed is None else allowed)
    if "fp32" not in allowed_set:
        allowed_set.add("fp32")  # the exact path is always a valid answer
    key = cache_key(model, device, rows, width, mode)
    path = cache_dir() / CACHE_FILE
    entry = read_json(path).get(key)
    if not refresh and _usable_entry(entry, candidates):
        cores = entry.get("other_cores")
        return _decide(entry["seconds"], allowed_set, cached=True, rounds=int(entry.get("rounds", 0) or 0),
                       min_seconds=entry.get("min_seconds") or {},
                       other_cores=float(cores) if isinstance(cores, (int, float)) else None)
    if measure is None:
        measure = step_timer(model, rows, width)
    timings = measure_precisions(measure, candidates, rounds, load_probe=load_probe, attempts=attempts)
    seconds, noise = timings.median, timings.noise()
    if noise:
        logger.warning("precision measurement is noisy, used for this run only and not cached: %s", noise)
    else:
        update_json(path, key, {"seconds": seconds, "min_seconds": timings.minimum, "rounds": timings.rounds,
                                "attempts": timings.attempts, "other_cores": timings.other_cores, "rows": rows,
                                "width": width, "mode": mode, "device": str(device), "host": cpu_info(),
                                "measured": time.strftime("%Y-%m-%d %H:%M:%S")})
    return _decide(seconds, allowed_set, cached=False, rounds=timings.rounds, min_seconds=timings.minimum,
                   other_cores=timings.other_cores, noise=noise)


def _usable_entry(entry, candidates: list[str]) -> bool:
    """A cached entry (this code's or older code's, which recorded only `seconds`) that covers `candidates`."""
    if not isinstance(entry, dict) or not isinstance(entry.get("seconds"), dict):
        return False
    seconds = entry["seconds"]
    return set(candidates) <= set(seconds) and all(isinstance(t, (int, float)) for t in seconds.values())


def measure_precisions(measure: Measure, candidates: list[str], rounds: int, *,
                       load_probe: LoadProbe | None = None, attempts: int = MAX_ATTEMPTS) -> Timings:
    """Alternating rounds of `measure` over `candidates`, measured again with more rounds
    (`rounds` x attempt) while the rounds disagree, `attempts` in all; the host's load is read
    over each attempt with `load_probe` (default `host_load_probe`). Returns the last attempt."""
    probe = load_probe or host_load_probe
    alive, failed = list(candidates), []
    timings = Timings({})
    for attempt in range(1, max(1, attempts) + 1):
        stop = probe()
        samples = time_rounds(measure, alive, rounds * attempt, warmup=attempt == 1)
        cores = stop()
        failed += [p for p in alive if not samples.get(p)]
        alive = [p for p in alive if p not in failed]
        timings = Timings({p: samples.get(p, []) if p not in failed else [] for p in candidates},
                          None if cores is None else max(0.0, float(cores)), attempt)
        disagreement = timings.disagreement()
        if not disagreement:
            break
        logger.info("precision timings disagree (%s) in attempt %d of %d", disagreement, attempt, attempts)
    return timings


def time_rounds(measure: Measure, candidates: list[str], rounds: int, warmup: bool = True) -> dict[str, list[float]]:
    """One warm-up call each (where `warmup`), then `rounds` alternating calls: each candidate's seconds per round.

    A candidate whose kernels are missing (RuntimeError) gets no rounds ([])."""
    samples: dict[str, list[float]] = {p: [] for p in candidates}
    alive = list(candidates)
    for warm in (True,) * bool(warmup) + (False,) * rounds:
        for p in list(alive):
            try:
                t = float(measure(p))
            except RuntimeError as exc:
                logger.info("precision %s cannot run here: %s", p, exc)
                alive.remove(p)
                samples[p] = []
                continue
            if not warm:
                samples[p].append(t)
    return samples


def time_alternating(measure: Measure, candidates: list[str], rounds: int) -> dict[str, float]:
    """One warm-up call each, then `rounds` alternating calls; the median time of each is kept.

    A candidate whose kernels are missing (RuntimeError) gets an infinite time."""
    return Timings(time_rounds(measure, candidates, rounds)).median


def rounds_disagree(samples: dict[str, list[float]]) -> str:
    """How per-round timings disagree ("" where they agree): a candidate's spread (slowest / fastest
    round) above `MAX_SPREAD`, or the per-round fp32/half ratio varying by more than `RATIO_TOLERANCE`."""
    for p, ts in samples.items():
        if len(ts) > 1 and min(ts) > 0 and max(ts) / min(ts) > MAX_SPREAD:
            return f"{p} rounds spread {max(ts) / min(ts):.2f}x"
    base = samples.get("fp32", [])
    for p, ts in samples.items():
        ratios = [b / t for b, t in zip(base, ts) if t > 0 and b > 0]
        if p != "fp32" and len(ratios) > 1 and max(ratios) / min(ratios) > 1 + RATIO_TOLERANCE:
            return f"fp32/{p} ratio {min(ratios):.2f}-{max(ratios):.2f} across rounds"
    return ""


def host_load_probe(*, busy_seconds: Callable[[], float | None] | None = None,
                    clock: Callable[[], float] = time.perf_counter,
                    own_seconds: Callable[[], float] = time.process_time) -> Callable[[], float | None]:
    """Start watching the host's load; the returned `stop()` gives the cores that other processes
    used on average since: the whole machine's busy CPU time (/proc/stat) less this process's own
    (all its threads), over the wall time. None where /proc/stat is missing or the interval is too
    short for its clock ticks to tell `LOAD_LIMIT` apart. The readers are injectable (tests)."""
    read_busy = busy_seconds or _machine_busy_seconds
    wall0, own0, busy0 = clock(), own_seconds(), read_busy()

    def stop() -> float | None:
        busy1, wall, own = read_busy(), clock() - wall0, own_seconds() - own0
        if busy0 is None or busy1 is None or wall <= 0:
            return None
        if busy_seconds is None and 2 * math.sqrt(os.cpu_count() or 1) / _clock_ticks() / wall > LOAD_LIMIT:
            return None  # tick-based accounting cannot resolve so short an interval
        return max(0.0, (busy1 - busy0 - own) / wall)

    return stop


def _clock_ticks() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100.0


def _machine_busy_seconds() -> float | None:
    """CPU seconds all processes on the machine spent busy since boot (user, nice, system, irq, softirq,
    steal from /proc/stat), or None where that cannot be read."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
        if not fields or fields[0] != "cpu":
            return None
        ticks = [int(x) for x in fields[1:9]] + [0] * 8
        user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
        return (user + nice + system + irq + softirq + steal) / _clock_ticks()
    except (OSError, ValueError):
        return None


def _decide(seconds: dict[str, float], allowed: set[str], cached: bool, *, rounds: int = 0,
            min_seconds: dict[str, float] | None = None, other_cores: float | None = None,
            noise: str = "") -> PrecisionChoice:
    base = seconds.get("fp32", float("inf"))
    best, best_t = "fp32", base
    for p, t in seconds.items():
        if p != "fp32" and p in allowed and t * MIN_SPEEDUP <= base and t < best_t:
            best, best_t = p, t
    shown = ", ".join(f"{p} {t:.3f}s" for p, t in seconds.items() if t != float("inf"))
    if rounds:
        shown = f"median of {rounds} rounds: {shown}"
    if best != "fp32":
        reason = f"{best} measured {base / best_t:.2f}x fp32 per step ({shown})"
    elif any(p != "fp32" and p in allowed for p in seconds):
        reason = f"no half precision measured >= {MIN_SPEEDUP:.2f}x fp32 per step ({shown})"
    else:
        reason = f"only exact fp32 allowed ({shown})"
    if cached:
        reason += "; cached measurement"
    elif noise:
        reason += f"; {noise}, not cached"
    return PrecisionChoice(best, reason, dict(seconds), cached, noisy=bool(noise), rounds=rounds,
                           min_seconds=dict(min_seconds or {}), other_cores=other_cores)


def cache_key(model: torch.nn.Module, device: torch.device, rows: int, width: int, mode: str) -> str:
    """Host kind + device + model shape + batch shape + mode: a measurement holds only for all of them."""
    cfg = getattr(model, "config", None)
    shape = "/".join(str(getattr(cfg, a, "?")) for a in ("model_type", "num_hidden_layers", "hidden_size",
                                                          "num_attention_heads", "intermediate_size"))
    if cfg is None:
        shape = f"{type(model).__name__}/{sum(p.numel() for p in model.parameters())}"
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    return f"{host_key(gpu)}|{device.type}|{shape}|{rows}x{width}|{mode}"


def own_forward(model: torch.nn.Module):
    """`model`'s own forward. A model that transformers' Trainer ran in bf16/fp16 keeps accelerate's
    mixed-precision wrapper on `forward` (the original as `_original_forward`), under which "fp32"
    runs in autocast too: timed through it, fp32 and bf16 measured alike (0.99x, cached, when bf16
    is 1.85x here) and bf16 was refused for the rest of the host's life."""
    return getattr(model, "_original_forward", None) or model


def step_timer(model: torch.nn.Module, rows: int, width: int) -> Measure:
    """A `measure(precision) -> seconds` that runs one inference step (a forward pass) of `model` on random tokens."""
    device = next(model.parameters()).device
    batch = timing_batch(model, rows, width)
    forward = own_forward(model)

    def measure(precision: str) -> float:
        was_training = model.training
        model.eval()
        with torch.inference_mode(), autocast(device, precision):
            start = time.perf_counter()
            forward(**batch)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start
        model.train(was_training)
        return seconds

    return measure


def autocast(device: torch.device, precision: str):
    """The autocast context of `precision` on `device` (none for fp32)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def timing_batch(model: torch.nn.Module, rows: int, width: int) -> dict[str, torch.Tensor]:
    """Random `rows` x `width` token inputs on `model`'s device (token types where its config has two or more)."""
    device = next(model.parameters()).device
    token_types = getattr(getattr(model, "config", None), "type_vocab_size", 0) >= 2
    return {k: torch.from_numpy(v).to(device) for k, v in random_batch(model, rows, width, token_types=token_types).items()}

"""Which backend and precision a CrossEncoder scores with: the rules, and the host measurements behind them.

See `crossrank.model.backends` for the rules in words.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager

import numpy as np
import torch

from crossrank.model.backends.base import (
    Backend,
    backend_name,
    cpu_info,
    host_key,
    precision_name,
    random_batch,
    read_json,
    update_json,
)
from crossrank.model.backends.bf16_weights import choose_bf16_variant
from crossrank.model.backends.fidelity_records import passing_record, passing_records
from crossrank.model.backends.onnx_backend import (
    EXPORT_RECORD,
    FILES,
    OnnxBackend,
    current_export,
    export_onnx,
    onnx_available,
    onnx_dir,
    require_onnxruntime,
)
from crossrank.model.backends.openvino_backend import (
    XML,
    OpenVINOBackend,
    has_conversion,
    openvino_available,
    openvino_bf16_supported,
    openvino_dir,
    require_openvino,
)
from crossrank.model.backends.path_timing import ROWS, WIDTH, time_paths
from crossrank.model.backends.precision import choose_precision
from crossrank.model.backends.torch_backend import TorchBackend

logger = logging.getLogger(__name__)

#: bf16 autocast on CPU is used only where it measured at least this much faster than fp32
BF16_MIN_SPEEDUP = 1.25
#: backend="auto" picks ONNX fp32 only where it measured at least this much faster than torch fp32
ONNX_MIN_SPEEDUP = 1.10
#: backend="auto" picks OpenVINO f32 (where its conversion is there) only where it measured at least this much faster than torch fp32
OPENVINO_MIN_SPEEDUP = 1.10
TIMINGS = "timings.json"

_local = threading.local()


@contextmanager
def fidelity_warnings(enabled: bool):
    """Turn the 'lossy precision without a passing fidelity record' warning off (the check itself uses this)."""
    before = getattr(_local, "warn", True)
    _local.warn = enabled
    try:
        yield
    finally:
        _local.warn = before


# ---------------------------------------------------------------------------------- measurements
def model_bf16_speedup(ce, refresh: bool = False) -> float:
    """fp32 time / bf16-autocast time of this model's forward pass (16 x 128 tokens) on this host.

    Timed on the model itself, alternating, once per host kind and model shape (cached in
    $CROSSRANK_CACHE/precision.json): a CPU flag alone misleads (an AVX512-BF16 Xeon ran bf16 slower).
    """
    choice = choose_precision(ce.model, rows=16, width=128, mode="inference", allowed=("fp32", "bf16"), refresh=refresh)
    return choice.speedup("bf16")


def openvino_speedup(ce, precision: str = "bf16", refresh: bool = False) -> float:
    """torch fp32 time / OpenVINO `precision` time of this model's forward pass (16 x 128 tokens) on this
    host (`path_timing.time_paths`: alternating rounds, medians, noise-guarded, cached per host kind and
    model shape); 0 where OpenVINO is not installed or cannot run `precision` natively."""
    if not openvino_available() or (precision == "bf16" and not openvino_bf16_supported()):
        return 0.0

    def make_runs():
        batch = random_batch(ce.model, ROWS, WIDTH, token_types=ce.uses_token_types)
        with fidelity_warnings(False):
            backends = {"fp32": TorchBackend(ce.model, ce.device, "fp32"), "openvino": _openvino(ce, precision)}

        def run(b: Backend):
            with b.session():
                b.run(batch)

        return {name: (lambda b=b: run(b)) for name, b in backends.items()}

    return time_paths(ce.model, f"inference-openvino-{precision}", make_runs, refresh=refresh).ratio("fp32", "openvino")


def time_backends(backends: dict[str, Backend], batch: dict[str, np.ndarray], rounds: int = 5) -> dict[str, float]:
    """pairs/s of each backend on one batch: a warm-up, then `rounds` alternating runs, best kept."""
    best = {name: float("inf") for name in backends}
    for name, b in backends.items():
        with b.session():
            b.run(batch)
    for _ in range(rounds):
        for name, b in backends.items():
            with b.session():
                start = time.perf_counter()
                b.run(batch)
                best[name] = min(best[name], time.perf_counter() - start)
    rows = len(batch["input_ids"])
    return {name: rows / t for name, t in best.items()}


def onnx_timings(ce, onnx_backend: OnnxBackend, refresh: bool = False) -> dict:
    """torch fp32 vs ONNX fp32 pairs/s for this model on this host (16 x 128 tokens), cached in MODEL/onnx/timings.json."""
    path = onnx_dir(ce.path) / TIMINGS
    key = host_key(f"onnxruntime={require_onnxruntime().__version__}")
    cached = read_json(path).get(key)
    if isinstance(cached, dict) and not refresh:
        return cached
    batch = random_batch(ce.model, 16, 128, token_types=ce.uses_token_types)
    speeds = time_backends({"torch": TorchBackend(ce.model, ce.device, "fp32"), "onnx": onnx_backend}, batch)
    entry = {"torch_fp32": round(speeds["torch"], 2), "onnx_fp32": round(speeds["onnx"], 2), "batch": "16 x 128 tokens",
             "host": cpu_info(), "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
    update_json(path, key, entry)
    return entry


# ---------------------------------------------------------------------------------- exports
def input_names(ce) -> tuple[str, ...]:
    return ("input_ids", "attention_mask") + (("token_type_ids",) if ce.uses_token_types else ())


def ensure_export(ce, precision: str, force: bool = False):
    """The current ONNX export of `ce` at `precision`, made now when missing or stale."""
    return export_onnx(ce.model, onnx_dir(ce.path), ce.weights_fingerprint(), precision, input_names(ce), force=force)


# ---------------------------------------------------------------------------------- the rules
def create_backend(ce, backend: str | None = None, precision: str | None = None) -> Backend:
    """Build the backend that `ce` scores with; `backend.reason` says why it was chosen."""
    if isinstance(precision, str) and precision.strip().lower() == "fastest":
        return _fastest(ce, backend_name(backend))
    want_b, want_p = backend_name(backend), precision_name(precision)
    device = ce.device
    weight_dtype = next(ce.model.parameters()).dtype
    half = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(weight_dtype)

    if half is not None:  # loaded with dtype=bf16/fp16: the weights decide
        if want_b == "onnx":
            raise ValueError("the ONNX backend exports fp32 weights; load the model without dtype= to use it")
        if want_p not in (None, half):
            raise ValueError(f"the model was loaded with {half} weights; precision={want_p!r} needs fp32 weights (drop dtype=)")
        return _done(TorchBackend(ce.model, device, half), f"weights loaded as {half}", ce)

    if want_b == "onnx" and device.type != "cpu":
        raise ValueError(f"the ONNX backend runs on CPU, but the model is on {device}; use backend='torch' there")
    if want_b == "onnx" and want_p not in (None, "fp32", "int8"):
        raise ValueError(f"the ONNX backend runs fp32 or int8, but got precision={want_p!r}")
    if want_b == "onnx":
        require_onnxruntime()

    if want_b == "openvino":
        return _openvino(ce, want_p or "fp32")

    if want_p is None:
        if device.type == "cuda":
            p = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            reason = f"default on CUDA: {p} autocast, scores in fp32"
        else:
            p, reason = "fp32", "default on CPU: fp32 (exact)"
    else:
        p, reason = want_p, "requested"

    bf16_weights = False
    if p == "bf16" and device.type == "cpu":
        speedup = model_bf16_speedup(ce)
        if speedup < BF16_MIN_SPEEDUP:
            logger.warning(
                "bf16 was asked for, but on this host (%s) bf16 autocast measured %.2fx the speed of fp32 "
                "(needs >= %.2fx): scoring in fp32, which is exact and faster here", cpu_info()["cpu"], speedup, BF16_MIN_SPEEDUP)
            p, reason = "fp32", f"bf16 measured {speedup:.2f}x fp32 on this host: fp32"
        else:
            variant = choose_bf16_variant(ce.model)
            bf16_weights = variant.weights
            reason = f"requested; bf16 measured {speedup:.2f}x fp32 on this host; {variant.reason}"

    if want_b == "torch" or (want_b is None and (device.type != "cpu" or p not in ("fp32", "int8"))):
        return _done(TorchBackend(ce.model, device, p, bf16_weights=bf16_weights), reason, ce)
    if want_b == "onnx":
        path = ensure_export(ce, p)
        return _done(OnnxBackend(path, p, source=ce.model), reason, ce)
    return _auto_cpu(ce, p, reason)


def _fastest(ce, want_b: str | None) -> Backend:
    """precision='fastest': of the lossy paths that passed `crossrank export --check` for these weights
    on this host kind (and can run here), the one whose check measured it fastest against fp32; the
    exact default where none did, with one log line saying why."""
    usable = []
    for record in passing_records(ce):
        name, p = record.get("backend"), record.get("precision")
        runs_here = {"onnx": onnx_available, "openvino": openvino_available}.get(name, lambda: name == "torch")()
        speed, base = record.get("pairs_per_second") or 0.0, record.get("fp32_pairs_per_second") or 0.0
        if runs_here and p != "fp32" and base > 0 and want_b in (None, name):
            usable.append((speed / base, name, p, record.get("variant", "")))
    best = max(usable, default=None)
    if best is None or best[0] <= 1.0:
        why = (f"no lossy path has passed `crossrank export --model {ce.path} --precision all --check` for these weights on this host"
               if best is None else f"the fastest passing path ({best[1]} {best[2]}) was not faster than fp32 in its check")
        logger.info("precision='fastest': %s; scoring exact", why)
        b = create_backend(ce, want_b, None)
        b.reason = f"fastest: {why}; exact ({b.reason})"
        return b
    ratio, name, p, variant = best
    b = create_backend(ce, name, p)
    b.reason = f"fastest passing path: {b.describe()} ({ratio:.2f}x fp32 in its fidelity check; {b.reason})"
    if b.variant != variant:
        logger.warning("precision='fastest': %s was checked as %r but runs as %r here now; run the check again",
                       b.describe(), variant or "autocast", b.variant or "autocast")
    return b


def _openvino(ce, p: str) -> Backend:
    """backend='openvino': CPU, fp32 or bf16 (bf16 only where OpenVINO runs it natively; else fp32, with a warning)."""
    if ce.device.type != "cpu":
        raise ValueError(f"the OpenVINO backend runs on CPU here, but the model is on {ce.device}; use backend='torch' there")
    if p not in ("fp32", "bf16"):
        raise ValueError(f"the OpenVINO backend runs fp32 or bf16, but got precision={p!r}")
    require_openvino()
    reason = "requested"
    if p == "bf16" and not openvino_bf16_supported():
        logger.warning("bf16 was asked for on OpenVINO, but this host's CPU (%s) has no native bf16: scoring in fp32", cpu_info()["cpu"])
        p, reason = "fp32", "requested bf16; this CPU has no native bf16 for OpenVINO: fp32"
    return _done(OpenVINOBackend(ce.model, openvino_dir(ce.path), ce.weights_fingerprint(), p, input_names(ce)), reason, ce)


def _auto_cpu(ce, p: str, reason: str) -> Backend:
    """backend='auto' on CPU for fp32 / int8. fp32: of torch, ONNX (where its export of these weights is
    there) and OpenVINO (where its conversion of these weights is there), the one measured fastest on
    this host, each alternative only where it measured >= its minimum over torch; int8: ONNX where
    its export is there. Nothing is exported or converted implicitly."""
    if p == "int8":
        onnx, why = _current_onnx(ce, p)
        if onnx is None:
            return _done(TorchBackend(ce.model, ce.device, p), f"{reason}; torch ({why})", ce)
        return _done(onnx, f"{reason}; ONNX int8 export present", ce)
    options, notes = [], []  # (ratio over torch, name, make)
    onnx, why = _current_onnx(ce, p)
    if onnx is not None:
        timings = onnx_timings(ce, onnx)
        ratio = timings["onnx_fp32"] / max(timings["torch_fp32"], 1e-9)
        notes.append(f"ONNX measured {ratio:.2f}x torch on this host")
        if ratio >= ONNX_MIN_SPEEDUP:
            options.append((ratio, "ONNX", lambda: onnx))
    else:
        notes.append(why)
    folder = openvino_dir(ce.path)
    if (folder / XML).exists() and openvino_available() and has_conversion(folder, ce.weights_fingerprint(), input_names(ce)):
        ratio = openvino_speedup(ce, "fp32")
        notes.append(f"OpenVINO f32 measured {ratio:.2f}x torch on this host")
        if ratio >= OPENVINO_MIN_SPEEDUP:
            options.append((ratio, "OpenVINO", lambda: OpenVINOBackend(ce.model, folder, ce.weights_fingerprint(), "fp32", input_names(ce))))
    if not options:
        return _done(TorchBackend(ce.model, ce.device, p), f"{reason}; torch ({'; '.join(notes)})", ce)
    ratio, name, make = max(options, key=lambda o: o[0])
    return _done(make(), f"{reason}; {name} measured {ratio:.2f}x torch on this host", ce)


def _current_onnx(ce, p: str) -> tuple[OnnxBackend | None, str]:
    """The ONNX backend of a current export at `p`, or None and why not."""
    if not onnx_available():
        return None, "onnxruntime not installed"
    folder = onnx_dir(ce.path)
    if not (folder / FILES[p]).exists() or not (folder / EXPORT_RECORD).exists():
        return None, "no ONNX export; `crossrank export` makes one"
    path = current_export(folder, p, ce.weights_fingerprint())
    if path is None:
        logger.info("%s: the ONNX export was made from other weights; scoring with torch (run `crossrank export` again)", folder)
        return None, "the ONNX export is stale"
    return OnnxBackend(path, p, source=ce.model), ""


def _done(b: Backend, reason: str, ce) -> Backend:
    b.reason = reason
    if b.lossy and getattr(_local, "warn", True):
        if passing_record(ce, b.name, b.precision, b.variant) is None:
            logger.warning(
                "%s is lossy and has no passing fidelity check for these weights on this host: its ranking may "
                "differ from fp32. Check it with `crossrank export --model %s --precision %s --check%s`",
                b.describe(), ce.path, b.precision, "" if b.name == "onnx" else " --backend torch")
    return b

"""Where the time of the fastest paths goes: OpenVINO's own per-node counters (`PERF_COUNT`), summed
by node type and kernel over real DL19 batches (the token budget the backend scores with).

    python benchmarks/bench_inference.py --pairs 500 --profile   # adds the profile under the table
"""
from __future__ import annotations

import collections
import time
from pathlib import Path


def openvino_op_profile(folder: Path, pairs, precision: str, max_length: int) -> tuple[float, list[tuple[str, float]]]:
    """(pairs/s with the counters on, [(node type and kernel, share of the profiled time)], largest first)."""
    import openvino as ov

    from crossrank import CrossEncoder
    from crossrank.model.backends.openvino_backend import HINTS, OpenVINOBackend, load_or_convert, openvino_dir
    from crossrank.model.backends.selection import input_names
    from crossrank.model.batching import padded_batches

    ce = CrossEncoder(folder, max_length=max_length, backend="torch")
    names = input_names(ce)
    converted = load_or_convert(ce.model, openvino_dir(ce.path), ce.weights_fingerprint(), names)
    compiled = ov.Core().compile_model(converted, "CPU", {"INFERENCE_PRECISION_HINT": HINTS[precision], "PERFORMANCE_HINT": "LATENCY",
                                                          "PERF_COUNT": True})
    request = compiled.create_infer_request()
    batches = [a for _, a in padded_batches(ce.pair_tokenizer, pairs, None, OpenVINOBackend.default_max_tokens,
                                            with_token_types="token_type_ids" in names)]
    for arrays in batches[:2]:  # warm-up
        request.infer({n: arrays[n] for n in names})
    spent: collections.Counter = collections.Counter()
    start = time.perf_counter()
    for arrays in batches:
        request.infer({n: arrays[n] for n in names})
        for node in request.profiling_info:
            kernel = node.exec_type.split("_")[0] if node.exec_type else "-"
            spent[f"{node.node_type} ({kernel})"] += node.real_time.total_seconds()
    seconds = time.perf_counter() - start
    total = sum(spent.values()) or 1.0
    return len(pairs) / seconds, [(op, t / total) for op, t in spent.most_common()]


def profile_lines(folder: Path, pairs, max_length: int, top: int = 6) -> list[str]:
    """One line per OpenVINO precision this host runs natively: its biggest node types and their shares."""
    from crossrank.model.backends.openvino_backend import openvino_available, openvino_bf16_supported

    if not openvino_available():
        return ["op profile: openvino not installed (`pip install crossrank[openvino]`)"]
    lines = []
    for precision in ("fp32", "bf16") if openvino_bf16_supported() else ("fp32",):
        speed, shares = openvino_op_profile(folder, pairs, precision, max_length)
        shown = ", ".join(f"{op} {share:.0%}" for op, share in shares[:top])
        lines.append(f"op profile, openvino {precision} ({speed:.0f} pairs/s with the counters on): {shown}")
    return lines

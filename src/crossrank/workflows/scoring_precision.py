"""The precision a job scores its evaluation sets in: bf16 only where it is faster on this host AND
faithful on held-out queries the job has already scored exactly.

A lossy path must never be taken on a CPU flag or on trust (bf16 is 8-19x slower on AVX2-only hosts,
and slower on one AVX512-BF16 Xeon). The rule, for a model whose exact (fp32) scores of some held-out
candidate lists are at hand:

1. speed: the forward pass is timed in torch fp32 against each bf16 path this host offers, torch
   (`crossrank.model.backends.selection.model_bf16_speedup`) and OpenVINO where installed
   (`openvino_speedup`): alternating rounds, medians, noise-guarded, cached per host kind; a path must
   be at least `min_speedup` x fp32;
2. fidelity: the same lists are scored on that path and compared with the exact scores as
   `crossrank export --check` compares (`crossrank.workflows.fidelity.compare_runs`): nDCG@10 within
   `max_ndcg_diff` and a mean top-10 overlap of at least `min_overlap`.

The fastest path that passes both is used; otherwise torch fp32, and `reason` says which test failed.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class FidelityBar:
    """What a lossy path must keep against the exact scores on held-out queries."""

    max_ndcg_diff: float = 0.005
    min_overlap: float = 0.95
    min_speedup: float = 1.25
    relevance_level: int = 1


@dataclass(frozen=True)
class ScoringPrecision:
    """The chosen precision and the measurements behind it (None where a step did not run)."""

    precision: str
    reason: str
    speedup: float | None = None
    ndcg_diff: float | None = None
    overlap: float | None = None
    backend: str = "torch"

    def record(self) -> dict:
        return asdict(self)


def choose_scoring_precision(model, candidates: Sequence, exact_scores: Sequence[np.ndarray], qrels: Mapping,
                             bar: FidelityBar = FidelityBar(), allowed: Sequence[str] = ("fp32", "bf16"), *,
                             backends: Sequence[str] = ("openvino", "torch")) -> ScoringPrecision:
    """The (backend, precision) `model` (a CrossEncoder) scores with, by the rule of this module's docstring.

    `candidates` are held-out `Candidates` lists whose torch fp32 scores are `exact_scores` (one array
    per list), judged by `qrels`; `backends` are the bf16 paths to try. The model's backend is left
    as it was; the caller applies the choice."""
    from crossrank.model.backends.selection import model_bf16_speedup, openvino_speedup

    if len(candidates) != len(exact_scores):
        raise ValueError(f"choose_scoring_precision expects one score array per candidate list, but got {len(candidates)} "
                         f"lists and {len(exact_scores)} arrays")
    if "bf16" not in allowed:
        return ScoringPrecision("fp32", "bf16 not allowed")
    if model.device.type != "cpu":
        return ScoringPrecision("fp32", f"the model runs on {model.device}: its default precision is already the fast one there")
    timers = {"openvino": openvino_speedup, "torch": model_bf16_speedup}
    speeds = {b: timers[b](model) for b in backends}
    fast = sorted((b for b in backends if speeds[b] >= bar.min_speedup), key=lambda b: -speeds[b])
    measured = ", ".join(f"{b} bf16 {speeds[b]:.2f}x fp32" for b in backends)
    if not fast:
        return ScoringPrecision("fp32", f"no bf16 path is >= {bar.min_speedup:.2f}x fp32 on this host ({measured})",
                                max(speeds.values(), default=0.0))
    failed = []
    for backend in fast:
        diff, overlap = _fidelity(model, backend, candidates, exact_scores, qrels, level=bar.relevance_level)
        shown = (f"{backend} bf16 {speeds[backend]:.2f}x fp32; on {len(candidates)} held-out queries nDCG@10 {diff:+.4f} vs fp32 "
                 f"(limit +-{bar.max_ndcg_diff}), top-10 overlap {overlap:.3f} (>= {bar.min_overlap})")
        if abs(diff) <= bar.max_ndcg_diff + 1e-12 and overlap >= bar.min_overlap - 1e-12:
            tried = "".join(f"; {f}" for f in failed)
            return ScoringPrecision("bf16", f"faster and faithful: {shown}{tried}", speeds[backend], diff, overlap, backend)
        failed.append(f"not faithful enough: {shown}")
    return ScoringPrecision("fp32", "bf16 " + "; ".join(failed), speeds[fast[-1]], diff, overlap)


def _fidelity(model, backend: str, candidates: Sequence, exact_scores: Sequence[np.ndarray], qrels: Mapping, *,
              level: int) -> tuple[float, float]:
    """(nDCG@10 difference, mean top-10 overlap) of `backend` bf16 against the exact scores on the held-out lists."""
    from crossrank.data.candidates import to_run
    from crossrank.model.backends.selection import fidelity_warnings
    from crossrank.pipeline import ScoringOptions, score
    from crossrank.workflows.fidelity import compare_runs

    with fidelity_warnings(False), model.using_backend(backend, "bf16"):
        lossy = score(model, list(candidates), ScoringOptions(activation="identity"))
    judged = {q: qrels[q] for q in (c.query_id for c in candidates) if q in qrels}
    ndcg_ref, ndcg, overlap = compare_runs(to_run(candidates, exact_scores), to_run(candidates, lossy), judged, 10, level)
    return ndcg - ndcg_ref, overlap

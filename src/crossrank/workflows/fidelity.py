"""The fidelity check that a lossy path (bf16 on CPU, int8) must pass before it is trusted.

The TREC DL19 BM25 top-100 candidates are reranked twice, by torch fp32 (the reference) and by
the path under test; the path passes when its nDCG@10 is within 0.005 of fp32's and its top-10
lists share >= 95% of their passages with fp32's (mean over queries). The result is recorded
beside the model (`crossrank.model.backends.fidelity_records`: MODEL/crossrank-fidelity.json, or
the user cache when MODEL is read-only), per path, per host kind (CPU model, flags, torch version)
and per weights (sha256 of the state dict). Loading a lossy path without a passing record for the
same weights and host kind logs a warning naming the command that runs the check
(`crossrank export --check`); it does not raise, so a new path can still be tried.
"""
from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from crossrank.data import load_qrels
from crossrank.data.candidates import from_run
from crossrank.evaluation import evaluate
from crossrank.model.backends.fidelity_records import record_fidelity
from crossrank.model.backends.selection import fidelity_warnings
from crossrank.pipeline import ScoringOptions, score_run

DL19_FILES = {
    "queries": "queries.dl19.tsv",
    "corpus": "collection.tsv",
    "run": "runs/run.dl19.bm25.top100.trec",
    "qrels": "qrels.dl19-passage.txt",
}


@dataclass
class FidelityConfig:
    """What the check reranks and what it accepts. `data`: the trec-dl19 folder."""

    data: str | os.PathLike
    queries: int | None = None  # the first N queries of the run (None: all 43)
    depth: int = 100
    k: int = 10
    max_ndcg_diff: float = 0.005
    min_overlap: float = 0.95
    relevance_level: int = 2
    batch_size: int | None = None
    max_tokens_per_batch: int | None = None

    def __post_init__(self) -> None:
        from crossrank.data.ranges import Range, check_ranges

        some = Range(1, integer=True, optional=True)
        check_ranges("fidelity check", self, {"queries": some, "depth": Range(1, integer=True), "k": Range(1, integer=True),
                                              "max_ndcg_diff": Range(0), "min_overlap": Range(0, 1),
                                              "relevance_level": Range(0, integer=True), "batch_size": some, "max_tokens_per_batch": some})


@dataclass
class FidelityReport:
    backend: str
    precision: str
    queries: int
    pairs: int
    ndcg_fp32: float
    ndcg: float
    ndcg_diff: float  # ndcg - ndcg_fp32
    overlap: float  # mean top-k overlap with fp32
    max_ndcg_diff: float
    min_overlap: float
    passed: bool
    fp32_pairs_per_second: float
    pairs_per_second: float
    variant: str = ""  # the backend's way of running the precision, where it has more than one ("bf16-weights")

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        path = f"{self.backend} {self.precision}" + (f" ({self.variant})" if self.variant else "")
        return (f"{verdict}: {path} on {self.queries} DL19 queries ({self.pairs} pairs): nDCG@10 "
                f"{self.ndcg:.4f} vs fp32 {self.ndcg_fp32:.4f} (diff {self.ndcg_diff:+.4f}, limit +-{self.max_ndcg_diff}), "
                f"top-10 overlap {self.overlap:.3f} (>= {self.min_overlap}); {self.pairs_per_second:.1f} vs fp32 "
                f"{self.fp32_pairs_per_second:.1f} pairs/s")


def top_k_overlap(reference: Mapping[str, Mapping[str, float]], candidate: Mapping[str, Mapping[str, float]], k: int = 10) -> float:
    """Mean over the reference's queries of |top-k(reference) & top-k(candidate)| / top-k size."""
    values = []
    for qid, ref_scores in reference.items():
        top_ref = set(_top(ref_scores, k))
        top_cand = set(_top(candidate.get(qid, {}), k))
        values.append(len(top_ref & top_cand) / max(len(top_ref), 1))
    return float(np.mean(values)) if values else 1.0


def _top(scores: Mapping[str, float], k: int) -> list[str]:
    # best first; ties by doc id (descending), as trec_eval breaks them
    by_id = sorted(scores.items(), key=lambda item: item[0], reverse=True)
    return [d for d, _ in sorted(by_id, key=lambda item: -item[1])[:k]]


def compare_runs(reference, candidate, qrels, k: int = 10, relevance_level: int = 2) -> tuple[float, float, float]:
    """(nDCG@k of reference, nDCG@k of candidate, mean top-k overlap) of two reranked runs."""
    metric = f"nDCG@{k}"
    ndcg_ref = evaluate(qrels, reference, [metric], relevance_level=relevance_level)[metric]
    ndcg_cand = evaluate(qrels, candidate, [metric], relevance_level=relevance_level)[metric]
    return ndcg_ref, ndcg_cand, top_k_overlap(reference, candidate, k)


def load_candidates(config: FidelityConfig):
    """The DL19 BM25 candidates and qrels the check reranks; a clear error when files are missing."""
    root = Path(config.data)
    missing = [f for f in DL19_FILES.values() if not (root / f).exists()]
    if missing:
        raise FileNotFoundError(
            f"the fidelity check needs TREC DL19 under {root} (missing {', '.join(missing)}); pass --data DIR "
            "(the folder holding trec-dl19/, or trec-dl19 itself), or set CROSSRANK_DATA; `crossrank download trec-dl-2019` fetches the official files"
        )
    cands = list(from_run(root / DL19_FILES["run"], root / DL19_FILES["corpus"], root / DL19_FILES["queries"], config.depth))
    if config.queries is not None:
        cands = cands[: config.queries]
    return cands, load_qrels(root / DL19_FILES["qrels"])


def _rerank(ce, cands, config: FidelityConfig) -> tuple[dict[str, dict[str, float]], float]:
    options = ScoringOptions(batch_size=config.batch_size, max_tokens_per_batch=config.max_tokens_per_batch, activation="identity")
    start = time.perf_counter()
    run = score_run(ce, cands, options)
    seconds = time.perf_counter() - start
    return run, sum(len(c) for c in cands) / max(seconds, 1e-9)


def check_fidelity(ce, backend: str | None, precision: str, config: FidelityConfig, record: bool = True) -> FidelityReport:
    """Rerank the DL19 candidates with torch fp32 and with (`backend`, `precision`) on the same
    CrossEncoder; pass/fail as `config` says, recorded beside the model when `record`.
    The CrossEncoder's backend is restored afterwards."""
    cands, qrels = load_candidates(config)
    with ce.using_backend("torch", "fp32"):
        reference, ref_speed = _rerank(ce, cands, config)
    with fidelity_warnings(False), ce.using_backend(backend, precision) as tested:
        candidate, speed = _rerank(ce, cands, config)
    ndcg_ref, ndcg, overlap = compare_runs(reference, candidate, qrels, config.k, config.relevance_level)
    diff = ndcg - ndcg_ref
    passed = abs(diff) <= config.max_ndcg_diff + 1e-12 and overlap >= config.min_overlap - 1e-12
    report = FidelityReport(tested.name, tested.precision, len(cands), sum(len(c) for c in cands), ndcg_ref, ndcg, diff, overlap,
                            config.max_ndcg_diff, config.min_overlap, passed, ref_speed, speed, tested.variant)
    if record:
        record_fidelity(ce, asdict(report))
    return report

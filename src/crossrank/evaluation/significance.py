"""Paired comparison of two runs: per-measure means, paired t-test and paired randomization test.

Query set, per measure: the queries on which either run has a value for it (see `evaluate`):
for RR all qrels queries; for the others the qrels queries present in run A or run B. A query that
one run lacks scores 0 for that run, so both runs are compared on the same queries.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crossrank.evaluation.evaluate import DEFAULT_METRICS, QrelsLike, RunLike, as_qrels, per_measure

_CHUNK = 1000


@dataclass(frozen=True)
class Comparison:
    """Result for one measure; ``diff = mean_b - mean_a`` (positive: B is better)."""

    measure: str
    n_queries: int
    mean_a: float
    mean_b: float
    diff: float
    t_test_p: float
    randomization_p: float


def paired_t_test(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p of scipy.stats.ttest_rel; 1.0 when all differences are 0 (scipy gives NaN)."""
    from scipy import stats

    diffs = b - a
    if len(diffs) < 2 or not np.any(diffs):
        return 1.0
    if np.all(diffs == diffs[0]):
        return 0.0
    return float(stats.ttest_rel(b, a).pvalue)


def randomization_test(a: np.ndarray, b: np.ndarray, n_permutations: int = 10000, seed: int = 0) -> float:
    """Two-sided paired randomization (sign-flip) test of the mean difference.

    Each permutation flips the sign of every per-query difference with probability 1/2 (seeded
    numpy Generator); p = (1 + #{|mean permuted| >= |mean observed|}) / (1 + n_permutations).
    """
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    diffs = b - a
    if not np.any(diffs):
        return 1.0
    observed = abs(diffs.mean())
    tolerance = 1e-12 * max(1.0, observed)
    rng = np.random.default_rng(seed)
    at_least = 0
    for start in range(0, n_permutations, _CHUNK):
        size = min(_CHUNK, n_permutations - start)
        signs = rng.integers(0, 2, size=(size, len(diffs)), dtype=np.int8) * 2 - 1
        means = np.abs(signs @ diffs) / len(diffs)
        at_least += int(np.count_nonzero(means >= observed - tolerance))
    return (1 + at_least) / (1 + n_permutations)


def _compare_one(name: str, values_a: dict[str, float], values_b: dict[str, float],
                 n_permutations: int, seed: int) -> Comparison:
    queries = sorted(set(values_a) | set(values_b))
    a = np.array([values_a.get(q, 0.0) for q in queries], dtype=np.float64)
    b = np.array([values_b.get(q, 0.0) for q in queries], dtype=np.float64)
    mean_a = float(a.mean()) if len(a) else math.nan
    mean_b = float(b.mean()) if len(b) else math.nan
    return Comparison(
        measure=name, n_queries=len(queries), mean_a=mean_a, mean_b=mean_b, diff=mean_b - mean_a,
        t_test_p=paired_t_test(a, b), randomization_p=randomization_test(a, b, n_permutations, seed),
    )


def compare(qrels: QrelsLike, run_a: RunLike, run_b: RunLike, metrics: Sequence[str] | str = DEFAULT_METRICS, *,
            relevance_level: int = 1, n_permutations: int = 10000, seed: int = 0) -> dict[str, Comparison]:
    """``{metric name: Comparison}`` of run B against run A on the same queries (module docstring)."""
    qrels = as_qrels(qrels)
    values_a = per_measure(qrels, run_a, metrics, relevance_level)
    values_b = per_measure(qrels, run_b, metrics, relevance_level)
    return {name: _compare_one(name, values_a[name], values_b[name], n_permutations, seed) for name in values_a}

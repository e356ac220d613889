"""Evaluation: trec_eval measures via ir_measures/pytrec_eval, MS MARCO MRR, paired significance tests.

No torch here. See `crossrank.evaluation.evaluate` for which queries each measure averages over.
"""
from __future__ import annotations

from crossrank.evaluation.evaluate import evaluate, evaluate_per_query
from crossrank.evaluation.measures import DEFAULT_METRICS, parse_metrics
from crossrank.evaluation.reciprocal_rank import reciprocal_rank, reciprocal_rank_per_query
from crossrank.evaluation.significance import Comparison, compare, paired_t_test, randomization_test

__all__ = [
    "DEFAULT_METRICS",
    "Comparison",
    "compare",
    "evaluate",
    "evaluate_per_query",
    "paired_t_test",
    "parse_metrics",
    "randomization_test",
    "reciprocal_rank",
    "reciprocal_rank_per_query",
]

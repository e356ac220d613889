"""A run file scored against a qrels file, optionally per query and as JSON: what `crossrank evaluate` runs.

    from crossrank.evaluation.evaluate_job import EvaluateConfig, evaluate_files

    result = evaluate_files(EvaluateConfig("qrels.trec", "run.trec", ["RR@10", "nDCG@10"], json="metrics.json"))
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from crossrank.evaluation.measures import DEFAULT_METRICS


@dataclass
class EvaluateConfig:
    """Which files, which measures (`crossrank.evaluation.evaluate`), and what else to give back."""

    qrels: Path
    run: Path
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    relevance_level: int = 1  # minimum grade counted relevant by binary measures; nDCG uses grades
    per_query: bool = False  # also each query's values
    json: Path | None = None  # also write {metric: mean} here (atomically)

    def __post_init__(self) -> None:
        from crossrank.data.ranges import Range, check_ranges

        check_ranges("evaluate", self, {"relevance_level": Range(0, integer=True)})


@dataclass
class EvaluateResult:
    means: dict[str, float]  # metric name (as given) -> mean
    per_query: dict[str, dict[str, float]] | None  # qid -> {metric: value}, with `per_query`


def evaluate_files(config: EvaluateConfig) -> EvaluateResult:
    """The means of `config.metrics` (and, with `per_query`, each query's values); written to `config.json` when given."""
    from crossrank.data import atomic_write, load_qrels, load_run
    from crossrank.evaluation.evaluate import evaluate, evaluate_per_query

    qrels, run = load_qrels(config.qrels), load_run(config.run)
    means = evaluate(qrels, run, config.metrics, relevance_level=config.relevance_level)
    per_query = (evaluate_per_query(qrels, run, config.metrics, relevance_level=config.relevance_level)
                 if config.per_query else None)
    if config.json is not None:
        with atomic_write(config.json) as handle:
            json.dump(means, handle, indent=2)
            handle.write("\n")
    return EvaluateResult(means, per_query)

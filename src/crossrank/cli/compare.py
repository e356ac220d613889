"""`crossrank compare`: paired comparison of two runs on the same queries.

    crossrank compare --qrels Q RUN_A RUN_B [--metrics ...] [--relevance-level N]
                      [--permutations 10000] [--seed 0]

Prints, per metric, the mean of A and B, B - A, the paired t-test p and the paired
randomization (sign-flip) test p.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from crossrank.cli.evaluate import add_metric_options, format_table, metric_names
from crossrank.cli.types import integer


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("compare", help="compare two runs: means, difference, t-test and randomization p",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--qrels", required=True, type=Path, help="qrels file")
    p.add_argument("run_a", type=Path, help="baseline run (A)")
    p.add_argument("run_b", type=Path, help="run compared with it (B)")
    add_metric_options(p)
    p.add_argument("--permutations", type=integer(1), default=10000, help="randomization test permutations (default: 10000)")
    p.add_argument("--seed", type=integer(0), default=0, help="randomization test seed (default: 0)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from crossrank.evaluation import compare

    results = compare(args.qrels, args.run_a, args.run_b, metric_names(args.metrics),
                      relevance_level=args.relevance_level, n_permutations=args.permutations, seed=args.seed)
    print(f"A = {args.run_a}\nB = {args.run_b}")
    header = ["metric", "queries", "A", "B", "B-A", "t-test p", "rand. p"]
    rows = [[r.measure, str(r.n_queries), f"{r.mean_a:.4f}", f"{r.mean_b:.4f}", f"{r.diff:+.4f}",
             f"{r.t_test_p:.4g}", f"{r.randomization_p:.4g}"] for r in results.values()]
    print(format_table(header, rows))
    return 0

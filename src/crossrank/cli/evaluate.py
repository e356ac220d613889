"""`crossrank evaluate`: score a run against qrels.

    crossrank evaluate --qrels Q --run R [--metrics RR@10,nDCG@10,AP,R@100] [--relevance-level 2]
                       [--json FILE] [--per-query]

RR/MRR follow MS MARCO's official script (every qrels query counts); the other measures are
trec_eval's (queries in both run and qrels). TREC DL convention: --relevance-level 2.
The library call: `crossrank.evaluation.evaluate_job.evaluate_files(EvaluateConfig(...))`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from crossrank.cli.types import integer
from crossrank.evaluation.measures import DEFAULT_METRICS


def add_metric_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                   help=f"comma-separated ir_measures names, MRR@k = RR@k (default: {','.join(DEFAULT_METRICS)})")
    p.add_argument("--relevance-level", type=integer(0), default=1,
                   help="minimum grade counted relevant by binary measures (RR, AP, R, P); nDCG uses grades "
                        "(default: 1; TREC DL uses 2)")


def metric_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("evaluate", help="evaluate a run against qrels (trec_eval / MS MARCO MRR)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--qrels", required=True, type=Path, help="qrels: TREC 4-column, 2-column or BEIR tsv")
    p.add_argument("--run", required=True, type=Path, help="run: TREC or MS MARCO format")
    add_metric_options(p)
    p.add_argument("--json", type=Path, default=None, help="also write {metric: value} to this JSON file")
    p.add_argument("--per-query", action="store_true", help="also print per-query values")
    p.set_defaults(func=run)
    return p


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned first column, right-aligned others."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _per_query_table(per_query: dict[str, dict[str, float]], names: list[str]) -> str:
    rows = [[qid] + [f"{values[n]:.4f}" if n in values else "-" for n in names]
            for qid, values in per_query.items()]
    return format_table(["query", *names], rows)


def run(args) -> int:
    from crossrank.evaluation.evaluate_job import EvaluateConfig, evaluate_files

    names = metric_names(args.metrics)
    result = evaluate_files(EvaluateConfig(args.qrels, args.run, names, relevance_level=args.relevance_level,
                                           per_query=args.per_query, json=args.json))
    if result.per_query is not None:
        print(_per_query_table(result.per_query, names))
        print()
    print(format_table(["metric", "value"], [[name, f"{value:.4f}"] for name, value in result.means.items()]))
    return 0

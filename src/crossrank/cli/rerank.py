"""`crossrank rerank` and `crossrank prepare`: candidates -> (rerank file) -> reranked run."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("rerank", help="rerank a run (or a rerank JSONL) with a cross-encoder into a run file")
    p.add_argument("--model", required=True, help="model folder or hub id")
    _add_inputs(p)
    p.add_argument("--output", required=True, help="reranked run to write")
    p.add_argument("--format", choices=["trec", "msmarco"], default="trec")
    p.add_argument("--tag", default="crossrank")
    p.add_argument("--batch-size", type=int, default=None, help="pairs per batch (default: bounded by a token budget)")
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--device", default=None)
    p.set_defaults(func=run_rerank)

    p = sub.add_parser("prepare", help="run + corpus + queries -> rerank JSONL (query_id, query, text_id, text, score)")
    _add_inputs(p, jsonl=False)
    p.add_argument("--output", required=True, help="rerank JSONL to write (.gz allowed)")
    p.set_defaults(func=run_prepare)


def _add_inputs(p: argparse.ArgumentParser, jsonl: bool = True) -> None:
    if jsonl:
        p.add_argument("--input", help="rerank JSONL (instead of --run/--corpus/--queries)")
    p.add_argument("--run", help="first-stage run (TREC or MS MARCO format)")
    p.add_argument("--corpus", help="collection.tsv or corpus.jsonl")
    p.add_argument("--queries", help="queries TSV or queries.jsonl")
    p.add_argument("--depth", type=int, default=100, help="candidates per query (default 100)")


def candidates_from_args(args: argparse.Namespace):
    from crossrank import pipeline

    if getattr(args, "input", None):
        return pipeline.from_rerank_jsonl(args.input, args.depth)
    missing = [f"--{n}" for n in ("run", "corpus", "queries") if not getattr(args, n)]
    if missing:
        raise ValueError(f"give --input, or all of --run, --corpus and --queries (missing {', '.join(missing)})")
    return pipeline.from_run(args.run, args.corpus, args.queries, args.depth)


def run_rerank(args: argparse.Namespace) -> int:
    from crossrank import CrossEncoder
    from crossrank.pipeline import RerankConfig, rerank_run

    candidates = list(candidates_from_args(args))  # read and checked before the model loads
    model = CrossEncoder(args.model, max_length=args.max_length, device=args.device)
    config = RerankConfig(format=args.format, tag=args.tag, batch_size=args.batch_size)
    stats = rerank_run(model, candidates, args.output, config, total_pairs=sum(len(c) for c in candidates))
    print(f"reranked {stats.queries} queries ({stats.pairs} pairs, {stats.pairs_per_second:.1f} pairs/s"
          + (f"; {stats.skipped_queries} done before resume" if stats.skipped_queries else "") + f") -> {args.output}")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from crossrank.data import write_rerank_jsonl
    from crossrank.pipeline import to_rerank_items

    items = (item for c in candidates_from_args(args) for item in to_rerank_items(c))
    write_rerank_jsonl(args.output, items)
    print(f"wrote {args.output}")
    return 0

"""`crossrank mine`: hard negatives from a run file or a dense bi-encoder -> training JSONL.

    crossrank mine --queries Q --corpus C --qrels R (--run RUN | --dense [--dense-model DIR]) \\
        --output train.jsonl [--split split.tsv --split-name train] [--num-negatives 7] \\
        [--range-min 0 --range-max 100] [--max-score X] [--margin X | --relative-margin X] \\
        [--sampling top|random] [--format tuples] [--rescore-model DIR --rescore-margin 0] [--seed 0]

The output (written atomically) is read by `crossrank train --set data.examples=FILE`. The library
call: `crossrank.training.mine_job.mine_to_file(MineJobConfig(...))`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from crossrank.cli.types import integer, number


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "mine",
        help="mine hard negatives from a run or a dense bi-encoder into training JSONL",
        description="Training examples from qrels with negatives mined from a first stage: a run file (e.g. BM25) "
                    "or a dense bi-encoder (all-MiniLM-L6-v2 by default, exact search). Judged positives are never "
                    "negatives. Filters apply in this order: rank window, --max-score, margin to the positive "
                    "(first-stage scores), cross-encoder rescoring; then --num-negatives are chosen.",
    )
    p.add_argument("--queries", required=True, type=Path, help="queries: TSV (qid<TAB>text) or BEIR queries.jsonl")
    p.add_argument("--corpus", required=True, type=Path, help="passages: collection.tsv or BEIR corpus.jsonl")
    p.add_argument("--qrels", required=True, type=Path, help="relevance judgments (positives: relevance > 0)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="first-stage run file (trec or msmarco): its candidates and scores")
    source.add_argument("--dense", action="store_true", help="retrieve candidates with a dense bi-encoder over the whole corpus")
    p.add_argument("--dense-model", type=Path, default=None, help="sentence-transformers bi-encoder folder (default: all-MiniLM-L6-v2)")
    p.add_argument("--dense-batch-size", type=integer(1), default=64, help="texts per embedding batch (default: 64)")
    p.add_argument("--dense-max-length", type=integer(1), default=None, help="tokens per text (default: the model's max_seq_length)")
    p.add_argument("--output", required=True, type=Path, help="training examples to write (JSONL)")
    p.add_argument("--split", type=Path, help="split file (qid<TAB>split) to keep one split's queries")
    p.add_argument("--split-name", default="train", help="split to keep (default: train)")
    p.add_argument("--num-negatives", type=integer(1), default=7, help="negatives per query (default: 7)")
    p.add_argument("--min-negatives", type=integer(0), default=1, help="skip queries with fewer negatives left (default: 1)")
    p.add_argument("--range-min", type=integer(0), default=0, help="skip this many best candidates (default: 0)")
    p.add_argument("--range-max", type=integer(1), default=100, help="consider candidates up to this rank (default: 100)")
    p.add_argument("--max-score", type=number(), default=None, help="drop candidates scoring above this")
    margin = p.add_mutually_exclusive_group()
    margin.add_argument("--margin", type=number(), default=None, help="keep candidates scoring <= positive - MARGIN")
    margin.add_argument("--relative-margin", type=number(), default=None,
                        help="keep candidates scoring <= positive * (1 - RELATIVE_MARGIN)")
    p.add_argument("--sampling", choices=("top", "random"), default="top", help="negatives: best first or a random sample")
    p.add_argument("--format", choices=("pairs", "tuples", "lists"), default="tuples", help="example shape (default: tuples)")
    p.add_argument("--rescore-model", type=Path, default=None, help="cross-encoder that drops likely false negatives")
    p.add_argument("--rescore-margin", type=number(), default=0.0,
                   help="drop candidates the cross-encoder scores >= positive - RESCORE_MARGIN (default: 0)")
    p.add_argument("--rescore-batch-size", type=integer(1), default=32)
    p.add_argument("--seed", type=integer(0), default=0, help="seed of --sampling random (default: 0)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from crossrank.training.mine_job import MineJobConfig, mine_to_file
    from crossrank.training.mining import MiningConfig

    mining = MiningConfig(
        num_negatives=args.num_negatives, range_min=args.range_min, range_max=args.range_max,
        max_score=args.max_score, margin=args.margin, relative_margin=args.relative_margin,
        sampling=args.sampling, format=args.format, rescore_model=args.rescore_model,
        rescore_margin=args.rescore_margin, rescore_batch_size=args.rescore_batch_size,
        min_negatives=args.min_negatives, seed=args.seed,
    )
    config = MineJobConfig(
        queries=args.queries, corpus=args.corpus, qrels=args.qrels, output=args.output, run=args.run,
        dense_model=args.dense_model, dense_batch_size=args.dense_batch_size, dense_max_length=args.dense_max_length,
        split=args.split, split_name=args.split_name, mining=mining, show_progress=args.progress,
    )
    print(mine_to_file(config).summary())
    return 0

"""`crossrank retrieve`: BM25 over a whole corpus -> a run file (first stage for `crossrank rerank`).

    crossrank retrieve --corpus corpus.jsonl --queries queries.jsonl --output run.trec \\
        [--index DIR] [--k 1000] [--k1 0.9] [--b 0.4] [--format trec|msmarco]

With --index DIR: reloads (memory-mapped) the index saved there, or builds it and saves it
there when DIR is new or empty. Never imports torch. The library call:
`crossrank.retrieval.retrieve_job.retrieve_to_file(RetrieveConfig(...))`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from crossrank.cli.types import integer, number

# crossrank.retrieval.retrieve_job.DEFAULT_TAG, not imported here: building the parser of every
# subcommand would import bm25s
DEFAULT_TAG = "crossrank-bm25"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "retrieve",
        help="BM25 retrieval over a whole corpus, written as a run file",
        description="Retrieve the top-k passages of a corpus for each query with BM25 (bm25s, Lucene variant, "
                    "English stopwords + Snowball stemming; BEIR title and text are indexed together). "
                    "Ties are ranked by doc id. The run is written atomically.",
    )
    p.add_argument("--corpus", required=True, type=Path,
                   help="passages: MS MARCO collection.tsv (pid<TAB>text) or BEIR corpus.jsonl")
    p.add_argument("--queries", required=True, type=Path, help="queries: TSV (qid<TAB>text) or BEIR queries.jsonl")
    p.add_argument("--output", required=True, type=Path, help="run file to write")
    p.add_argument("--index", type=Path, default=None,
                   help="index directory: reloaded if it holds an index, else the new index is saved there")
    p.add_argument("--k", type=integer(1), default=1000, help="passages per query (default: 1000)")
    p.add_argument("--k1", type=number(0), default=None, help="BM25 k1 (default: 0.9, or the saved index's)")
    p.add_argument("--b", type=number(0, 1), default=None, help="BM25 b (default: 0.4, or the saved index's)")
    p.add_argument("--format", choices=("trec", "msmarco"), default="trec", help="run file format (default: trec)")
    p.add_argument("--tag", default=DEFAULT_TAG, help=f"run tag in TREC runs (default: {DEFAULT_TAG})")
    p.add_argument("--threads", type=integer(1), default=None, help="search threads (default: all cores for corpora of 100k+ passages, else 1)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from crossrank.retrieval.retrieve_job import RetrieveConfig, retrieve_to_file

    config = RetrieveConfig(corpus=args.corpus, queries=args.queries, output=args.output, index=args.index, k=args.k,
                            k1=args.k1, b=args.b, format=args.format, tag=args.tag, threads=args.threads,
                            show_progress=args.progress)
    retrieve_to_file(config)  # logs what it wrote
    return 0

"""`crossrank retrieve`: BM25 over a whole corpus -> a run file (first stage for `crossrank rerank`).

    crossrank retrieve --corpus corpus.jsonl --queries queries.jsonl --output run.trec \\
        [--index DIR] [--k 1000] [--k1 0.9] [--b 0.4] [--format trec|msmarco]

With --index DIR: reloads (memory-mapped) the index saved there, or builds it and saves it
there when DIR is new or empty. Never imports torch.
"""
from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

logger = logging.getLogger("crossrank.retrieve")

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
    p.add_argument("--k", type=int, default=1000, help="passages per query (default: 1000)")
    p.add_argument("--k1", type=float, default=None, help="BM25 k1 (default: 0.9, or the saved index's)")
    p.add_argument("--b", type=float, default=None, help="BM25 b (default: 0.4, or the saved index's)")
    p.add_argument("--format", choices=("trec", "msmarco"), default="trec", help="run file format (default: trec)")
    p.add_argument("--tag", default=DEFAULT_TAG, help=f"run tag in TREC runs (default: {DEFAULT_TAG})")
    p.add_argument("--threads", type=int, default=None, help="search threads (default: all cores for corpora of 100k+ passages, else 1)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=run)
    return p


def _source(path: Path) -> dict:
    return {"corpus": str(path.resolve()), "corpus_bytes": path.stat().st_size}


def _open_index(args):
    from crossrank.data import iter_corpus
    from crossrank.retrieval import BM25Config, BM25Index

    if args.index is not None and BM25Index.is_index(args.index):
        index = BM25Index.load(args.index, mmap=True)
        asked = {"k1": args.k1, "b": args.b}
        clash = {name: value for name, value in asked.items()
                 if value is not None and value != getattr(index.config, name)}
        if clash:
            have = ", ".join(f"{name}={getattr(index.config, name)}" for name in clash)
            want = ", ".join(f"{name}={value}" for name, value in clash.items())
            raise ValueError(f"the index in {args.index} was built with {have}, not {want}: "
                             "give another --index directory (or none) to build one with these settings")
        source = _source(args.corpus)
        if index.metadata.get("corpus_bytes") not in (None, source["corpus_bytes"]):
            logger.warning("the index in %s was built from %s (%s bytes), but --corpus %s has %s bytes",
                           args.index, index.metadata.get("corpus"), index.metadata.get("corpus_bytes"),
                           args.corpus, source["corpus_bytes"])
        logger.info("reloaded %r from %s", index, args.index)
        return index

    if args.index is not None:
        BM25Index.check_can_save(args.index)  # fail now, not after indexing
    defaults = BM25Config()
    config = BM25Config(k1=defaults.k1 if args.k1 is None else args.k1, b=defaults.b if args.b is None else args.b)
    if not args.corpus.is_file():
        raise FileNotFoundError(f"corpus file not found: {args.corpus}")
    index = BM25Index.build(iter_corpus(args.corpus), config, show_progress=args.progress, metadata=_source(args.corpus))
    if args.index is not None:
        index.save(args.index)
    return index


def run(args) -> int:
    from crossrank.data import iter_queries, write_run

    if args.k < 1:
        raise ValueError(f"--k must be >= 1, got {args.k}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if not args.queries.is_file():
        raise FileNotFoundError(f"queries file not found: {args.queries}")
    started = time.perf_counter()
    index = _open_index(args)
    queries = list(iter_queries(args.queries))
    if not queries:
        raise ValueError(f"no queries in {args.queries}")
    results = index.search(queries, k=args.k, show_progress=args.progress, n_threads=args.threads)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_run(args.output, results, format=args.format, tag=args.tag)
    retrieved = sum(len(docs) for docs in results.values())
    logger.info("wrote %s: %d queries, %d passages (%.1f per query) in %.1fs",
                os.fspath(args.output), len(results), retrieved, retrieved / len(results), time.perf_counter() - started)
    return 0

"""`crossrank pseudo-queries`: training data from a corpus alone -> training JSONL.

    crossrank pseudo-queries --corpus C --output train.jsonl [--strategy sentence|terms] [--num-queries N] \\
        [--num-candidates 15] [--exclude-run RUN [--exclude-split split.tsv --exclude-split-name tune]] \\
        [--teacher-dense 4 --teacher-bm25 1 --feedback-depth 3] [--teacher-cross-encoder DIR --teacher-cross-encoder-weight 1] \\
        [--scale 2] [--seed 0]

Each usable passage gives a pseudo-query (a sentence cut out of it, or its salient words), BM25 over
the corpus gives its candidates, and an ensemble teacher (bi-encoder cosine, BM25, optionally a
cross-encoder, fused with dense feedback) gives every candidate a target. The output is read by
`crossrank train --set data.examples=FILE`. The library call:
`crossrank.training.pseudo_job.write_pseudo_queries(PseudoQueriesJob(...))`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from crossrank.cli.types import integer, number


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "pseudo-queries",
        help="training data from a corpus alone: pseudo-queries, BM25 candidates, teacher targets",
        description="Pseudo-queries from passages (no generator model), BM25 candidates from the same corpus, and "
                    "targets from an ensemble teacher: domain adaptation for a corpus without judged queries.",
    )
    p.add_argument("--corpus", required=True, type=Path, help="passages: collection.tsv or BEIR corpus.jsonl")
    p.add_argument("--output", required=True, type=Path, help="training examples to write (JSONL)")
    p.add_argument("--strategy", choices=("sentence", "terms"), default="sentence",
                   help="sentence: a sentence cut out of the passage (inverse cloze); terms: its salient words")
    p.add_argument("--num-queries", type=integer(1), default=None, help="at most this many pseudo-queries (default: one per usable passage)")
    p.add_argument("--num-candidates", type=integer(1), default=15, help="BM25 neighbours per query beside its source passage (default: 15)")
    p.add_argument("--exclude-run", type=Path, help="hold out the passages of this run (e.g. tuning queries' candidates)")
    p.add_argument("--exclude-split", type=Path, help="only the run's queries of this split (qid<TAB>split)")
    p.add_argument("--exclude-split-name", default="tune", help="split whose candidates are held out (default: tune)")
    p.add_argument("--teacher-dense", type=number(0), default=4.0, help="weight of the bi-encoder cosine (default: 4)")
    p.add_argument("--teacher-dense-model", default="minilm", help="bi-encoder folder (default: all-MiniLM-L6-v2)")
    p.add_argument("--teacher-bm25", type=number(0), default=1.0, help="weight of the BM25 score (default: 1)")
    p.add_argument("--teacher-cross-encoder", default=None, help="a cross-encoder teacher folder")
    p.add_argument("--teacher-cross-encoder-weight", type=number(0), default=1.0, help="its weight (default: 1, with --teacher-cross-encoder)")
    p.add_argument("--teacher-cache", type=Path, default=None, help="cross-encoder teacher scores cache (TSV, resumable)")
    p.add_argument("--feedback-depth", type=integer(0), default=3, help="dense feedback from the teacher's fused top N (0: off; default: 3)")
    p.add_argument("--scale", type=number(0, above=True), default=2.0, help="targets = SCALE x the z-normalised teacher score (default: 2)")
    p.add_argument("--seed", type=integer(0), default=0)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from crossrank.training.corpus_examples import PseudoDataConfig
    from crossrank.training.pseudo_job import PseudoQueriesJob, write_pseudo_queries
    from crossrank.training.teachers import TeacherConfig

    data = PseudoDataConfig(str(args.corpus), args.strategy, args.num_queries, args.num_candidates,
                            str(args.exclude_run) if args.exclude_run else None,
                            str(args.exclude_split) if args.exclude_split else None, args.exclude_split_name, args.seed)
    teacher = TeacherConfig(dense=args.teacher_dense, first_stage=args.teacher_bm25,
                            cross_encoder=args.teacher_cross_encoder_weight if args.teacher_cross_encoder else 0.0,
                            feedback_depth=args.feedback_depth, scale=args.scale, dense_model=args.teacher_dense_model,
                            cross_encoder_model=args.teacher_cross_encoder,
                            cache=str(args.teacher_cache) if args.teacher_cache else None)
    result = write_pseudo_queries(PseudoQueriesJob(data, teacher, str(args.output), show_progress=args.progress))
    print(f"{result.counts.summary()}\nteacher: {result.teacher}\nwrote {result.examples:,} examples to {result.output}")
    return 0

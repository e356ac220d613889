"""`crossrank convert`: rewrite a run file in TREC or MS MARCO format.

    crossrank convert --input run.tsv --output run.trec --to trec [--tag T]

Input format is detected (6 fields: TREC, 3: MS MARCO). Ranks are re-derived from the scores
(score desc, ties by doc id desc, as trec_eval); MS MARCO input gets score = -rank.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from crossrank.data.runs import FORMATS


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("convert", help="convert a run between TREC and MS MARCO formats",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, type=Path, help="run file to read (format detected, .gz ok)")
    p.add_argument("--output", required=True, type=Path, help="run file to write (atomically; .gz ok)")
    p.add_argument("--to", required=True, choices=FORMATS, help="output format")
    p.add_argument("--tag", default="crossrank", help="run tag for TREC output (default: crossrank)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from crossrank.data import convert_run

    convert_run(args.input, args.output, to_format=args.to, tag=args.tag)
    return 0

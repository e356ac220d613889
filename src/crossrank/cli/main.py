"""`crossrank` console script: one thin module per subcommand.

Each module in COMMANDS defines `add_parser(subparsers)` (which sets `func`) and is imported
only when the command line is parsed, so `crossrank evaluate` never imports torch.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# subcommand name -> module under crossrank.cli
COMMANDS: dict[str, str] = {
    "rerank": "rerank",
    "prepare": "rerank",
    "quickstart": "quickstart",
    "retrieve": "retrieve",
    "train": "train",
    "convert": "convert",
    "evaluate": "evaluate",
    "compare": "compare",
    "download": "download",
    "mine": "mine",
    "pseudo-queries": "pseudo_queries",
    "export": "export",
    "serve": "serve",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crossrank", description="Neural passage re-ranking with cross-encoders.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in dict.fromkeys(COMMANDS.values()):  # a module may define several subcommands
        importlib.import_module(f"crossrank.cli.{module}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0), or a bad flag (2): argparse has printed it; the code is the answer
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, TypeError) as exc:  # user errors: one clear line, no traceback
        if args.verbose:
            raise
        print(f"crossrank {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # an optional extra is missing: its message says what to install
        if args.verbose or "pip install" not in str(exc):
            raise
        print(f"crossrank {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

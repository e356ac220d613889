"""`crossrank download`: fetch public MS MARCO / TREC DL / BEIR files from their official locations.

    crossrank download NAME [--dest DIR] [--force] [--extract] [--only FILE ...]
    crossrank download --list

Files stream to FILE.part (resumed with an HTTP Range request after an interruption), are
checked against their published md5, then renamed into place; present, verified files are skipped.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("download", help="download MS MARCO / TREC DL / BEIR files (checksummed, resumable)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("name", nargs="?", metavar="NAME", help="dataset: msmarco-passage, trec-dl-2019, beir-scifact")
    p.add_argument("--dest", type=Path, default=None, help="destination folder (default: data/NAME)")
    p.add_argument("--force", action="store_true", help="download again even if the files are present")
    p.add_argument("--extract", action="store_true", help="also unpack .tar.gz / .zip archives into --dest")
    p.add_argument("--only", action="append", default=None, metavar="FILE",
                   help="download only this file of the dataset (repeatable)")
    p.add_argument("--list", action="store_true", help="list the datasets and their files, then exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--base-url", default=None, help=argparse.SUPPRESS)  # mirror / tests: BASE_URL/FILENAME
    p.set_defaults(func=run)
    return p


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def _list(registry) -> int:
    for name, dataset in registry.items():
        print(f"{name}: {dataset.description}")
        for remote in dataset.files:
            digest = f"md5 {remote.md5}" if remote.md5 else f"sha256 {remote.sha256}" if remote.sha256 else "no published checksum"
            print(f"  {remote.name:<40} {_size(remote.size):>10}  {digest}")
        if dataset.terms:
            print(f"  terms: {dataset.terms}")
    return 0


def run(args: argparse.Namespace) -> int:
    from crossrank.data import download as dl

    registry = dl.REGISTRY
    if args.list:
        return _list(registry)
    if not args.name:
        raise ValueError("name a dataset (crossrank download --list shows them)")
    dataset = dl.get_dataset(args.name, registry)
    dest = args.dest or Path("data") / dataset.name
    if dataset.terms:
        print(f"{dataset.name}: {dataset.terms}", file=sys.stderr)
    try:
        results = dl.download_dataset(dataset.name, dest, registry=registry, files=args.only, base_url=args.base_url,
                                      force=args.force, extract=args.extract,
                                      progress=False if args.no_progress else None)
    except dl.DownloadError as exc:
        print(f"crossrank download: error: {exc}", file=sys.stderr)
        return 1
    for result in results:
        check = "verified" if result.verified else "no published checksum; recorded in .sha256"
        print(f"{result.status:<10} {result.path}  {result.algorithm} {result.digest} ({check})")
        for path in result.extracted:
            print(f"  extracted {path}")
    return 0

"""`crossrank quickstart`: the main job end to end on real data."""
from __future__ import annotations

import argparse
import os
from pathlib import Path


def default_data_dir() -> Path | None:
    env = os.environ.get("CROSSRANK_DATA")
    if env:
        return Path(env)
    here = Path.cwd() / ".." / "shared" / "data"
    return here.resolve() if here.is_dir() else None


def add_parser(sub) -> None:
    p = sub.add_parser("quickstart", help="the main job on real data: rerank TREC DL19 BM25 top-100 and evaluate")
    p.add_argument("--data", type=Path, default=None, help="data folder (default $CROSSRANK_DATA, else ../shared/data)")
    p.add_argument("--model", default=None, help="cross-encoder to use (default: MiniLM body with a new head)")
    p.add_argument("--output", type=Path, default=Path("runs/quickstart"), help="output folder")
    p.add_argument("--depth", type=int, default=100)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crossrank import CrossEncoder
    from crossrank.evaluation import evaluate
    from crossrank.model import minilm_path
    from crossrank.pipeline import RerankConfig, from_run, rerank_run

    data = args.data or default_data_dir()
    dl19 = data / "trec-dl19" if data else None
    if dl19 is None or not (dl19 / "qrels.dl19-passage.txt").exists():
        raise FileNotFoundError(f"TREC DL19 data not found under {data}; pass --data DIR or set CROSSRANK_DATA")
    bm25_run = dl19 / "runs" / "run.dl19.bm25.top100.trec"
    qrels = dl19 / "qrels.dl19-passage.txt"
    model = CrossEncoder(args.model or minilm_path())
    print(f"model: {model}")
    out = args.output / "dl19.reranked.trec"
    candidates = list(from_run(bm25_run, dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", args.depth))
    stats = rerank_run(model, candidates, out, RerankConfig(tag="crossrank"), total_pairs=sum(len(c) for c in candidates))
    metrics = ["nDCG@10", "RR@10", "AP", "R@10"]
    before = evaluate(qrels, bm25_run, metrics=metrics, relevance_level=2)
    after = evaluate(qrels, out, metrics=metrics, relevance_level=2)
    print(f"\nTREC DL19, BM25 top-{args.depth} reranked ({stats.pairs} pairs, {stats.pairs_per_second:.1f} pairs/s)")
    print(f"{'measure':<10}{'BM25':>10}{'reranked':>10}")
    for m in metrics:
        print(f"{m:<10}{before[m]:>10.4f}{after[m]:>10.4f}")
    print(f"\nrun written to {out}")
    return 0

"""Long passages on SciFact: truncation against windows (MaxP, FirstP, mean) at several max_lengths.

    python benchmarks/bench_long_passages.py --model MODEL [--queries 100] [--depth 20] \
        [--max-lengths 128,256] [--aggregates max,mean]

BM25 (crossrank.retrieval, k1=0.9, b=0.4, title + abstract) over the whole SciFact corpus gives
each test claim its top-`depth` abstracts; the cross-encoder alone reranks them, once truncating
passages to max_length and once per aggregate with `long_passages="window"` (default windows: what
fits beside the query, stride half a window). Prints a markdown table: nDCG@10 (relevance level 1),
its difference from truncation at the same max_length with the paired randomization test's p, pairs
or windows scored, and seconds; BM25's own nDCG@10 on the same queries; the share of SciFact
abstracts longer than each max_length (model tokens, title + abstract, no special tokens); the host.

FirstP with the default window is truncation (the first window is what truncation keeps), so it
is not scored again unless asked for with --aggregates. One process; on a shared host run nothing
else heavy at the same time.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import host  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="cross-encoder folder or hub id")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="folder holding scifact/")
    p.add_argument("--queries", type=int, default=None, help="first N test claims (by id); default all 300")
    p.add_argument("--depth", type=int, default=20, help="BM25 candidates per claim (default 20)")
    p.add_argument("--max-lengths", default="128,256", help="comma-separated (default 128,256)")
    p.add_argument("--aggregates", default="max,mean", help="window aggregates, comma-separated, of max, first, mean")
    return p.parse_args(argv)


def token_lengths(model, texts: list[str]) -> np.ndarray:
    return np.array([len(e.ids) for e in model.pair_tokenizer.encode_texts(texts)])


def count_windows(model, queries: list[str], candidate_lists: list[list[str]]) -> int:
    from crossrank.model.windows import WindowConfig, plan_windows

    budget = model.max_length - model.pair_tokenizer.n_special
    total = 0
    for q, docs in zip(queries, candidate_lists):
        nq = len(model.pair_tokenizer.encode_texts([q])[0].ids)
        total += sum(len(plan_windows(nq, n, budget, WindowConfig())) for n in token_lengths(model, docs))
    return total


def main(argv=None) -> int:
    from crossrank import CrossEncoder, WindowConfig
    from crossrank.data import Collection, iter_corpus, iter_queries, load_qrels
    from crossrank.evaluation import compare, evaluate
    from crossrank.retrieval import BM25Index

    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    folder = args.data / "scifact"
    qrels = load_qrels(folder / "qrels" / "test.tsv")
    queries = sorted((q for q in iter_queries(folder / "queries.jsonl") if q.query_id in qrels), key=lambda q: int(q.query_id))
    queries = queries[: args.queries] if args.queries else queries
    passages = list(iter_corpus(folder / "corpus.jsonl"))
    bm25 = BM25Index.build(passages, show_progress=False).search(queries, k=args.depth, show_progress=False)
    texts = Collection.from_passages(passages)
    qtext = {q.query_id: q.text for q in queries}
    qids = [q.query_id for q in queries if bm25.get(q.query_id)]
    doc_ids = [list(bm25[q]) for q in qids]
    cand_texts = [[texts[d] for d in docs] for docs in doc_ids]
    qrels = {q: qrels[q] for q in qids}

    model = CrossEncoder(args.model)
    corpus_lengths = token_lengths(model, [texts[p.doc_id] for p in passages])
    pairs = sum(len(d) for d in doc_ids)

    def run_of(scores: list[np.ndarray]) -> dict:
        return {q: {d: float(s) for d, s in zip(docs, sc)} for q, docs, sc in zip(qids, doc_ids, scores)}

    bm25_ndcg = evaluate(qrels, {q: bm25[q] for q in qids}, metrics=["nDCG@10"])["nDCG@10"]
    rows = []
    for max_length in (int(x) for x in args.max_lengths.split(",")):
        model.max_length = max_length
        start = time.perf_counter()
        truncated = run_of(model.rerank_many([qtext[q] for q in qids], cand_texts, show_progress_bar=False))
        seconds = time.perf_counter() - start
        base = evaluate(qrels, truncated, metrics=["nDCG@10"])["nDCG@10"]
        rows.append((max_length, "truncate", f"{pairs} pairs", base, None, None, seconds))
        n_windows = count_windows(model, [qtext[q] for q in qids], cand_texts)
        for how in args.aggregates.split(","):
            start = time.perf_counter()
            scores = model.rerank_many([qtext[q] for q in qids], cand_texts, show_progress_bar=False,
                                       long_passages="window", window=WindowConfig(aggregate=how))
            seconds = time.perf_counter() - start
            c = compare(qrels, truncated, run_of(scores), metrics=["nDCG@10"])["nDCG@10"]
            rows.append((max_length, f"window, {WindowConfig(aggregate=how).aggregate}", f"{n_windows} windows", c.mean_b, c.diff,
                         c.randomization_p, seconds))
            print(f"  done: max_length {max_length}, {how}: nDCG@10 {c.mean_b:.4f}", file=sys.stderr, flush=True)

    print(f"SciFact test claims: {len(qids)}, BM25 top-{args.depth} each ({pairs} pairs); model {args.model}")
    print(f"host: {host()}")
    shares = ", ".join(f"{(corpus_lengths > L).mean():.1%} > {L}" for L in sorted({r[0] for r in rows}))
    print(f"SciFact abstracts ({len(corpus_lengths)}; title + abstract, model tokens): {shares}; "
          f"median {int(np.median(corpus_lengths))}, 90th percentile {int(np.percentile(corpus_lengths, 90))}\n")
    print("| max_length | scoring | scored | nDCG@10 | vs truncation (p) | seconds |")
    print("|---|---|---|---|---|---|")
    print(f"| - | BM25 (first stage) | - | {bm25_ndcg:.4f} | - | - |")
    for max_length, name, scored, value, diff, p, seconds in rows:
        delta = "-" if diff is None else f"{diff:+.4f} (p={p:.3f})"
        print(f"| {max_length} | {name} | {scored} | {value:.4f} | {delta} | {seconds:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training speed: a fixed recipe for a few steps, crossrank's trainer vs sentence-transformers' CrossEncoderTrainer.

    python benchmarks/bench_training.py [--steps 10] [--batch-size 16] [--max-length 256] [--rounds 1]

Same base model (all-MiniLM-L6-v2 with a new one-logit head), same loss (binary cross-entropy on
logits), same batch size, max length, learning rate and pairs: MS MARCO dev600 train split, each
judged positive with 4 BM25 negatives, one (query, passage, label) pair per example. Each round
trains crossrank (crossrank.training.trainer.train with max_steps) then sentence-transformers
for --steps steps in this process, timing the trainer's train() call only (model loading and the
final save left out). pairs/s = steps x batch size / seconds. Written to benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import replace_section  # noqa: E402
from bench_inference import host_lines  # noqa: E402


def build_pairs(data: Path, seed: int):
    from crossrank.training.config import DataConfig
    from crossrank.training.datasets import build_examples

    root = data / "msmarco-dev600"
    cfg = DataConfig(format="pairs", queries=str(root / "queries.tsv"), corpus=str(root / "collection.tsv"),
                     qrels=str(root / "qrels.dev.small.600q.trec"), run=str(root / "run.bm25.top20.trec"),
                     split=str(root / "split.tsv"), split_name="train", negatives_ratio=4)
    return build_examples(cfg, seed=seed)


def run_crossrank(examples, args, out: Path) -> float:
    from crossrank.model import minilm_path
    from crossrank.training.config import TrainConfig
    from crossrank.training.trainer import train

    config = TrainConfig(model=str(minilm_path()), output_dir=str(out), loss="bce", batch_size=args.batch_size,
                         max_length=args.max_length, max_steps=args.steps, learning_rate=2e-5, warmup_ratio=0.0,
                         precision="fp32", logging_steps=10_000, save_steps=10_000, seed=12)
    result = train(config, examples=examples)
    return args.steps * args.batch_size / result.train_seconds


def run_sentence_transformers(examples, args, out: Path) -> float | str:
    try:
        from datasets import Dataset
    except ImportError:
        return "skipped: CrossEncoderTrainer needs `pip install datasets`"
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    from crossrank.model import minilm_path

    model = CrossEncoder(str(minilm_path()), num_labels=1, max_length=args.max_length, device="cpu")
    dataset = Dataset.from_dict({
        "query": [e.query for e in examples],
        "passage": [e.passages[0] for e in examples],
        "label": [float(e.targets[0]) for e in examples],
    })
    targs = CrossEncoderTrainingArguments(output_dir=str(out), per_device_train_batch_size=args.batch_size, max_steps=args.steps,
                                          learning_rate=2e-5, warmup_steps=0, save_strategy="no", logging_steps=10_000,
                                          report_to="none", use_cpu=True, dataloader_num_workers=0, seed=12)
    trainer = CrossEncoderTrainer(model=model, args=targs, train_dataset=dataset, loss=BinaryCrossEntropyLoss(model))
    start = time.perf_counter()
    trainer.train()
    return args.steps * args.batch_size / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("CROSSRANK_DATA", REPO.parent / "shared" / "data")))
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "RESULTS.md", help="markdown report ('-' for none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    host = host_lines()
    print("\n".join(host))
    examples = build_pairs(args.data, seed=12)
    print(f"{len(examples)} training pairs; {args.steps} steps x batch {args.batch_size}, max length {args.max_length}")
    results: dict[str, list] = {"crossrank": [], "sentence-transformers": []}
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            results["crossrank"].append(run_crossrank(examples, args, Path(tmp) / "crossrank"))
            results["sentence-transformers"].append(run_sentence_transformers(examples, args, Path(tmp) / "st"))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1] if isinstance(v[-1], str) else f'{v[-1]:.1f} pairs/s'}" for k, v in results.items()))
    ours = max(results["crossrank"])
    theirs = [v for v in results["sentence-transformers"] if not isinstance(v, str)]
    rows = ["| trainer | pairs/s (best round) | vs sentence-transformers |", "| --- | --- | --- |",
            f"| crossrank train (HF Trainer engine, BCE) | {ours:.1f} | {f'{ours / max(theirs):.2f}x' if theirs else '-'} |"]
    if theirs:
        import sentence_transformers

        rows.append(f"| sentence-transformers {sentence_transformers.__version__} CrossEncoderTrainer, BinaryCrossEntropyLoss | {max(theirs):.1f} | 1.00x |")
    else:
        rows.append(f"| sentence-transformers CrossEncoderTrainer | {results['sentence-transformers'][0]} | - |")
    print("\n".join(rows))
    if args.output != Path("-"):
        body = ["## Training: crossrank vs sentence-transformers, fp32, same recipe", "",
                f"`python benchmarks/bench_training.py --steps {args.steps} --batch-size {args.batch_size} "
                f"--max-length {args.max_length} --rounds {args.rounds}` on {time.strftime('%Y-%m-%d %H:%M')}; "
                f"{len(examples)} MS MARCO dev600 train pairs (1 positive : 4 BM25 negatives).", "", *host, "", *rows]
        replace_section(args.output, "training", "\n".join(body))
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

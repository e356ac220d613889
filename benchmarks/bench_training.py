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


def run_crossrank(examples, args, out: Path, precision: str, length_groups: bool = True) -> tuple[float, list[float], str]:
    """pairs/s, the loss at every step, and the precision used ("auto": measured on this host)."""
    from crossrank.model import minilm_path
    from crossrank.training.config import TrainConfig
    from crossrank.training.trainer import train

    config = TrainConfig(model=str(minilm_path()), output_dir=str(out), loss="bce", batch_size=args.batch_size,
                         max_length=args.max_length, max_steps=args.steps, learning_rate=2e-5, warmup_ratio=0.0,
                         precision=precision, logging_steps=5, save_steps=10_000, seed=12, length_groups=length_groups)
    result = train(config, examples=examples, verbose=False)
    losses = [h["loss"] for h in result.log_history if "loss" in h]
    return args.steps * args.batch_size / result.train_seconds, losses, result.precision


def run_sentence_transformers(examples, args, out: Path) -> tuple[float, list[float], str] | str:
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
                                          learning_rate=2e-5, warmup_steps=0, save_strategy="no", logging_steps=5,
                                          report_to="none", use_cpu=True, dataloader_num_workers=0, seed=12)
    trainer = CrossEncoderTrainer(model=model, args=targs, train_dataset=dataset, loss=BinaryCrossEntropyLoss(model))
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return args.steps * args.batch_size / seconds, [h["loss"] for h in trainer.state.log_history if "loss" in h], "fp32"


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
    runs = {"crossrank (precision auto)": lambda out: run_crossrank(examples, args, out, "auto"),
            "crossrank fp32": lambda out: run_crossrank(examples, args, out, "fp32"),
            "crossrank fp32, one padded tensor per batch": lambda out: run_crossrank(examples, args, out, "fp32", False),
            "sentence-transformers": lambda out: run_sentence_transformers(examples, args, out)}
    results: dict[str, list] = {k: [] for k in runs}
    for r in range(args.rounds):
        for name, fn in runs.items():
            with tempfile.TemporaryDirectory() as tmp:
                results[name].append(fn(Path(tmp) / "out"))
            got = results[name][-1]
            print(f"round {r + 1}: {name}: " + (got if isinstance(got, str) else f"{got[0]:.1f} pairs/s, {got[2]}"))
    st = [v for v in results["sentence-transformers"] if not isinstance(v, str)]
    st_best = max(v[0] for v in st) if st else None
    rows = ["| trainer | precision | pairs/s (best round) | vs sentence-transformers | mean loss, first half of steps | mean loss, second half |",
            "| --- | --- | --- | --- | --- | --- |"]
    for name, values in results.items():
        ok = [v for v in values if not isinstance(v, str)]
        if not ok:
            rows.append(f"| {name} | - | {values[0]} | - | - | - |")
            continue
        best = max(ok, key=lambda v: v[0])
        half = max(len(best[1]) // 2, 1)
        label = {"sentence-transformers": "sentence-transformers CrossEncoderTrainer, BinaryCrossEntropyLoss"}.get(name, f"{name}, BCE")
        rows.append(f"| {label} | {best[2]} | {best[0]:.1f} | {f'{best[0] / st_best:.2f}x' if st_best else '-'} | "
                    f"{sum(best[1][:half]) / half:.4f} | {sum(best[1][half:]) / max(len(best[1]) - half, 1):.4f} |")
    print("\n".join(rows))
    if args.output != Path("-"):
        body = ["## Training: crossrank vs sentence-transformers, same recipe", "",
                f"`python benchmarks/bench_training.py --steps {args.steps} --batch-size {args.batch_size} "
                f"--max-length {args.max_length} --rounds {args.rounds}` on {time.strftime('%Y-%m-%d %H:%M')}; "
                f"{len(examples)} MS MARCO dev600 train pairs (1 positive : 4 BM25 negatives). sentence-transformers trains in "
                f"its default fp32; crossrank's default `precision: auto` times fp32 and bf16 training steps on this host and "
                f"uses the faster. crossrank scores each batch in length-sorted sub-batches (`length_groups`, default on: same "
                f"loss, less padding); the 'one padded tensor per batch' row turns that off. The loss columns compare the "
                f"curves (same data order and seed).", "", *host, "", *rows]
        replace_section(args.output, "training", "\n".join(body))
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

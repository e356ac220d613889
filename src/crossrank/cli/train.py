"""`crossrank train`: train a cross-encoder from a YAML config and/or flags.

The YAML file and the flags make one `TrainConfig` (`TrainConfig.load(path, overrides)`), passed to
`crossrank.training.trainer.train` (or, with --check-data, to `prepare`, whose data check is printed).
"""
from __future__ import annotations

import argparse

import yaml

from crossrank.cli.types import integer, number

# flag -> dotted config key; every flag overrides the YAML value
FLAGS = {
    "model": "model", "output_dir": "output_dir", "loss": "loss", "batch_size": "batch_size",
    "learning_rate": "learning_rate", "head_learning_rate": "head_learning_rate", "warmup_ratio": "warmup_ratio", "epochs": "epochs",
    "max_steps": "max_steps", "max_length": "max_length", "seed": "seed", "precision": "precision", "attention": "attention",
    "save_steps": "save_steps", "gradient_accumulation": "gradient_accumulation",
    "format": "data.format", "queries": "data.queries", "corpus": "data.corpus", "qrels": "data.qrels",
    "run": "data.run", "triples": "data.triples", "split": "data.split", "num_negatives": "data.num_negatives",
    "teacher": "data.teacher", "eval_steps": "eval.steps", "stop_on_collapse": "stop_on_collapse",
}


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a cross-encoder (YAML config and/or flags)")
    p.add_argument("--config", help="YAML file of settings (see examples/)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the output dir")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any setting by dotted key, e.g. --set loss_options.weighting=ndcg2pp (YAML value syntax)")
    p.add_argument("--model", help="base model folder or hub id")
    p.add_argument("--output-dir")
    p.add_argument("--loss", help="bce, mse, ranknet, margin_mse, listnet, listmle, plistmle, lambda, grouped_ce, mnrl, cached_mnrl")
    p.add_argument("--batch-size", type=integer(1))
    p.add_argument("--learning-rate", type=number(0, above=True))
    p.add_argument("--head-learning-rate", type=number(0, above=True), help="learning rate of the scoring head (pooler + classifier)")
    p.add_argument("--warmup-ratio", type=number(0, 1))
    p.add_argument("--epochs", type=number(0, above=True))
    p.add_argument("--max-steps", type=integer(-1))
    p.add_argument("--max-length", type=integer(1))
    p.add_argument("--seed", type=integer(0))
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                   help="default auto: each precision the device supports is timed on the model and the fastest used")
    p.add_argument("--attention", choices=["auto", "sdpa", "eager"],
                   help="the training step's attention kernel; default auto: both timed on the model, the faster used")
    p.add_argument("--check-data", action="store_true", help="print the data check (figures, problems, first-stage baseline) and stop")
    p.add_argument("--stop-on-collapse", action="store_true", default=None,
                   help="end the run when scores collapse or training diverges, keeping the best checkpoint")
    p.add_argument("--save-steps", type=integer(1))
    p.add_argument("--gradient-accumulation", type=integer(1))
    p.add_argument("--format", choices=["pairs", "tuples", "lists", "groups"], help="training example shape")
    for name in ("queries", "corpus", "qrels", "run", "triples", "split", "teacher"):
        p.add_argument(f"--{name}")
    p.add_argument("--num-negatives", type=integer(1))
    p.add_argument("--eval-steps", type=integer(1))
    p.set_defaults(func=run)


def overrides_from_args(args: argparse.Namespace) -> list[tuple[str, object]]:
    """(dotted key, value) of every flag given, then of every --set, in that order (later ones win)."""
    overrides = [(key, getattr(args, flag)) for flag, key in FLAGS.items() if getattr(args, flag, None) is not None]
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, but got {item!r}")
        key, raw = item.split("=", 1)
        overrides.append((key.strip(), yaml.safe_load(raw)))
    return overrides


def run(args: argparse.Namespace) -> int:
    from crossrank.training import TrainConfig

    config = TrainConfig.load(args.config or None, overrides_from_args(args))
    if args.check_data:
        from crossrank.training.trainer import prepare

        *_, check = prepare(config)
        print(check.table())
        check.raise_problems()
        return 0
    from crossrank.training.trainer import train

    result = train(config, resume=args.resume)
    print(f"model saved to {result.model_dir} after {result.global_step} steps "
          f"({result.train_seconds:.0f} s, {result.pairs_per_second:.1f} pairs/s)")
    if result.best_metric is not None:
        print(f"best {config.eval.metric_for_best}: {result.best_metric:.4f}")
    for symptom in result.symptoms:
        print(f"WARNING: {symptom.message()}")
    print(f"training report: {config.output_dir}/training_report.md")
    return 0

"""`crossrank quickstart`: the main job end to end on real data (train, rerank DL19 and SciFact, report)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from crossrank.cli.types import integer, number


def default_data_dir() -> Path:
    """$CROSSRANK_DATA, else ../shared/data when present, else ./data."""
    env = os.environ.get("CROSSRANK_DATA")
    if env:
        return Path(env)
    shared = Path.cwd().parent / "shared" / "data"
    return shared if shared.is_dir() else Path("data")


def add_parser(sub) -> None:
    p = sub.add_parser("quickstart", help="train on MS MARCO, rerank TREC DL19 and SciFact, report against BM25")
    p.add_argument("--data", type=Path, default=None, help="data folder (default $CROSSRANK_DATA, else ../shared/data)")
    p.add_argument("--output", type=Path, default=Path("runs/quickstart"), help="output folder (default runs/quickstart)")
    p.add_argument("--base-model", default="minilm", help="model to train from (default: all-MiniLM-L6-v2)")
    p.add_argument("--max-steps", type=integer(1), default=None, help="training steps (default 300)")
    p.add_argument("--epochs", type=number(0, above=True), default=None, help="train for epochs instead of --max-steps")
    p.add_argument("--learning-rate", type=number(0, above=True), default=None)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    p.add_argument("--scoring-precision", choices=["auto", "fp32", "bf16"], default=None,
                   help="the cross-encoder's precision on the evaluation sets (default auto: bf16 where faster and faithful on the tune split)")
    p.add_argument("--dense-precision", choices=["auto", "fp32", "bf16"], default=None,
                   help="the bi-encoder's precision (default auto: bf16 where its forward pass measures faster on this host)")
    p.add_argument("--dense-backend", choices=["auto", "torch", "openvino"], default=None,
                   help="the bi-encoder's backend (default auto: OpenVINO where installed and measured faster on this host)")
    p.add_argument("--scifact-depth", type=integer(1), default=None, help="SciFact BM25 candidates reranked per query (default 30; 100 takes about twice as long)")
    p.add_argument("--window-keep", type=integer(0), default=None,
                   help="SciFact and BEIR-layout passages: windows scored per passage (default 3: the first and the two sharing most query tokens; 0: truncation)")
    p.add_argument("--pseudo-queries", type=integer(0), default=None, help="pseudo-queries from the dev600 collection added to training (default 1000; 0: none)")
    p.add_argument("--scifact-pseudo-queries", type=integer(0), default=None,
                   help="pseudo-queries from the SciFact corpus added to training (domain adaptation; its queries and qrels are never used)")
    p.add_argument("--scifact-teacher-bm25", type=number(0), default=None,
                   help="the SciFact pseudo-queries' teacher: the bi-encoder + this x BM25 (default 0: the teacher chosen on dev600)")
    p.add_argument("--beir-queries", type=integer(0), default=None,
                   help="test queries per small BEIR-layout collection reported with their mean (default 50, as NanoBEIR; 0: none)")
    p.add_argument("--no-fusion", action="store_true", help="report the cross-encoder alone, without score fusion")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crossrank.workflows.quickstart import QuickstartConfig, run_quickstart

    cfg = QuickstartConfig(data=args.data or default_data_dir(), output=args.output, base_model=args.base_model,
                           precision=args.precision, fusion=not args.no_fusion)
    for name in ("max_steps", "epochs", "learning_rate", "scoring_precision", "dense_precision", "dense_backend", "scifact_depth", "window_keep", "pseudo_queries", "scifact_pseudo_queries",
                 "scifact_teacher_bm25", "beir_queries"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    if args.epochs is not None and args.max_steps is None:
        cfg.max_steps = -1  # epochs rule
    run_quickstart(cfg)
    return 0

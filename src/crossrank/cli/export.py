"""`crossrank export`: ONNX exports beside a model, and the fidelity check of a lossy path.

    crossrank export --model DIR [--precision fp32|int8] [--check] [--data DIR] [--queries N]
    crossrank export --model DIR --backend torch --precision bf16|int8 --check

Writes DIR/onnx/model.onnx (and model_int8.onnx for int8), measures torch vs ONNX fp32 on this
host (CrossEncoder(DIR) then picks the faster exact one), and with --check reranks TREC DL19
BM25 top-100 with fp32 and with the path: pass = nDCG@10 within 0.005 and top-10 overlap >= 95%,
recorded in DIR/crossrank-fidelity.json. Exit status 1 when the check fails.
"""
from __future__ import annotations

import argparse

from crossrank.cli.types import integer, number


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="export a model to ONNX (fp32/int8) and check a lossy path's fidelity",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model folder (exports are written to MODEL/onnx/)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "int8", "bf16", "all"],
                   help="fp32 (default), int8; bf16 with --backend torch or openvino; all (with --check): check and record every "
                        "lossy path this host runs, which `precision=\"fastest\"` then picks from")
    p.add_argument("--backend", default="onnx", choices=["onnx", "torch", "openvino"],
                   help="onnx (default): export and time; openvino: convert (MODEL/openvino/); torch: nothing to export, use with --check")
    p.add_argument("--check", action="store_true", help="run the DL19 fidelity check against torch fp32 and record it")
    p.add_argument("--data", default=None, help="trec-dl19 folder, or the folder holding it (default: $CROSSRANK_DATA or ./data)")
    p.add_argument("--queries", type=integer(1), default=None, help="check on the first N DL19 queries only (default: all 43)")
    p.add_argument("--max-ndcg-diff", type=number(0), default=0.005, help="largest accepted |nDCG@10 - fp32's| (default 0.005)")
    p.add_argument("--min-overlap", type=number(0, 1), default=0.95, help="smallest accepted mean top-10 overlap with fp32 (default 0.95)")
    p.add_argument("--max-length", type=integer(1), default=None, help="tokens per pair (default: the model's)")
    p.add_argument("--force", action="store_true", help="export again even when a current export is there")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from crossrank.workflows.export import ExportConfig, default_dl19_dir, export_model
    from crossrank.workflows.fidelity import FidelityConfig

    if args.queries is not None and args.queries < 1:
        raise ValueError(f"--queries must be >= 1, but got {args.queries}")
    check = None
    if args.check:
        check = FidelityConfig(default_dl19_dir(args.data), queries=args.queries, max_ndcg_diff=args.max_ndcg_diff,
                               min_overlap=args.min_overlap)
    result = export_model(ExportConfig(args.model, args.precision, args.backend, args.force, args.max_length, check))
    for f in result.files:
        print(f"exported {f} ({f.stat().st_size / 2**20:.1f} MiB)")
    if result.timings:
        t = result.timings
        measured = (f"openvino f32 {t['openvino_fp32_vs_torch']:.2f}x torch fp32" if "openvino_fp32_vs_torch" in t
                    else f"torch fp32 {t['torch_fp32']:.1f} pairs/s, onnx fp32 {t['onnx_fp32']:.1f} pairs/s")
        print(f"this host, 16 x 128 tokens: {measured}; CrossEncoder({args.model}) scores with {result.default_backend} by default here")
    for line in result.skipped:
        print(f"not checked: {line}")
    for report in result.reports:
        print(report.summary())
    if result.reports:
        print(f"recorded in {result.record}; `--precision fastest` (rerank, serve) and CrossEncoder(..., precision=\"fastest\") "
              "now score with the fastest path that passed")
        return 0
    if result.report is not None:
        print(result.report.summary())
        print(f"recorded in {result.record}")
        return 0 if result.report.passed else 1
    return 0

"""`crossrank rerank` and `crossrank prepare`: candidates -> (rerank file) -> reranked run."""
from __future__ import annotations

import argparse

from crossrank.cli.types import integer


def add_parser(sub) -> None:
    p = sub.add_parser("rerank", help="rerank a run (or a rerank JSONL) with a cross-encoder into a run file")
    p.add_argument("--model", required=True, help="model folder or hub id")
    _add_inputs(p)
    p.add_argument("--output", required=True, help="reranked run to write")
    p.add_argument("--format", choices=["trec", "msmarco"], default="trec")
    p.add_argument("--tag", default="crossrank")
    p.add_argument("--overwrite", action="store_true",
                   help="start again, discarding an unfinished run at --output (by default it is resumed when its settings and candidates match)")
    p.add_argument("--batch-size", type=integer(1), default=None, help="pairs per batch (default: bounded by a token budget)")
    p.add_argument("--max-length", type=integer(1), default=None)
    p.add_argument("--device", default=None)
    add_backend_flags(p)
    p.add_argument("--fused", action="store_true",
                   help="fuse with the bi-encoder and first-stage scores as set in the model's fusion.json (the quickstart writes one)")
    add_long_passage_flags(p)
    g = p.add_argument_group("engine (docs/scaling.md)")
    g.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process (default); ray: shard the queries over Ray workers (pip install 'crossrank[ray]')")
    g.add_argument("--workers", type=integer(1), default=None, help="Ray workers (default: one per GPU, else one per CPU)")
    g.add_argument("--ray-address", default=None, help="Ray cluster to join (default: start a local one)")
    p.set_defaults(func=run_rerank)

    p = sub.add_parser("prepare", help="run + corpus + queries -> rerank JSONL (query_id, query, text_id, text, score)")
    _add_inputs(p, jsonl=False)
    p.add_argument("--output", required=True, help="rerank JSONL to write (.gz allowed)")
    p.set_defaults(func=run_prepare)


def _add_inputs(p: argparse.ArgumentParser, jsonl: bool = True) -> None:
    if jsonl:
        p.add_argument("--input", help="rerank JSONL (instead of --run/--corpus/--queries)")
    p.add_argument("--run", help="first-stage run (TREC or MS MARCO format)")
    p.add_argument("--corpus", help="collection.tsv or corpus.jsonl")
    p.add_argument("--queries", help="queries TSV or queries.jsonl")
    p.add_argument("--depth", type=integer(1), default=100, help="candidates per query (default 100)")


def add_backend_flags(p: argparse.ArgumentParser) -> None:
    """--backend and --precision, as CrossEncoder takes them (`crossrank.model.backends`)."""
    p.add_argument("--backend", choices=["auto", "torch", "onnx", "openvino"], default=None,
                   help="inference backend (default auto: torch, or a current ONNX export measured faster here)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16", "int8", "fastest"], default=None,
                   help="default auto: exact fp32 on CPU; fastest: the fastest path that passed "
                        "`crossrank export --model DIR --precision all --check` on this host (exact where none did)")


def add_long_passage_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("long passages (docs/long_passages.md)")
    g.add_argument("--long-passages", choices=["truncate", "window"], default="truncate",
                   help="truncate: cut what does not fit max_length (default); window: score overlapping windows and aggregate")
    g.add_argument("--window-size", type=integer(1), default=None,
                   help="passage tokens per window (default: what fits beside the query in max_length)")
    g.add_argument("--window-stride", type=integer(1), default=None, help="tokens between window starts (default: half a window)")
    g.add_argument("--aggregate", choices=["max", "first", "mean"], default=None,
                   help="window scores to a passage score: max (MaxP, default), first (FirstP) or mean")
    g.add_argument("--window-keep", type=integer(1), default=None,
                   help="windows scored per passage: the first and those sharing most query tokens (default: all)")


def window_from_args(args: argparse.Namespace):
    """(long_passages, WindowConfig or None) from the flags; ValueError for flags that do not fit together."""
    given = [f for f, v in (("--window-size", args.window_size), ("--window-stride", args.window_stride),
                            ("--aggregate", args.aggregate), ("--window-keep", args.window_keep)) if v is not None]
    if args.long_passages == "truncate":
        if given:
            raise ValueError(f"{', '.join(given)} apply to windows only: add --long-passages window")
        return "truncate", None
    from crossrank.model.windows import WindowConfig

    return "window", WindowConfig(args.window_size, args.window_stride, args.aggregate or "max", args.window_keep)


def source_from_args(args: argparse.Namespace, jsonl: bool = True):
    from crossrank.pipeline.rerank_job import CandidateSource

    return CandidateSource(getattr(args, "input", None) if jsonl else None, args.run, args.corpus, args.queries, args.depth)


def run_rerank(args: argparse.Namespace) -> int:
    from crossrank.pipeline import RerankConfig
    from crossrank.pipeline.rerank_job import RerankJob, run_rerank_job

    long_passages, window = window_from_args(args)
    config = RerankConfig(format=args.format, tag=args.tag, batch_size=args.batch_size, long_passages=long_passages, window=window,
                          overwrite=args.overwrite)
    job = RerankJob(args.model, source_from_args(args), args.output, config, fused=args.fused, max_length=args.max_length,
                    device=args.device, engine=_engine_from_args(args), backend=args.backend, precision=args.precision)
    stats = run_rerank_job(job)
    print(f"reranked {stats.queries} queries ({stats.pairs} pairs, {stats.pairs_per_second:.1f} pairs/s"
          + (f"; {stats.skipped_queries} done before resume" if stats.skipped_queries else "") + f") -> {args.output}")
    return 0


def _engine_from_args(args: argparse.Namespace):
    """RayEngineConfig for --engine ray, None for local."""
    if args.engine == "local":
        given = [f for f, v in (("--workers", args.workers), ("--ray-address", args.ray_address)) if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} apply to --engine ray only")
        return None
    from crossrank.pipeline.ray_engine import RayEngineConfig

    return RayEngineConfig(num_workers=args.workers, address=args.ray_address)


def run_prepare(args: argparse.Namespace) -> int:
    from crossrank.pipeline.rerank_job import write_rerank_file

    write_rerank_file(source_from_args(args, jsonl=False), args.output)
    print(f"wrote {args.output}")
    return 0

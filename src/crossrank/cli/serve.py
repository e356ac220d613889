"""`crossrank serve`: an HTTP rerank server (Cohere, Jina, infinity and TEI request shapes).

Flags -> `ServerConfig` (`config_from_args`) -> `crossrank.serving.launch.serve_model`.
"""
from __future__ import annotations

import argparse
import os
import sys

from crossrank.cli.rerank import add_backend_flags
from crossrank.cli.types import integer, number


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve a cross-encoder over HTTP (Cohere/Jina/infinity/TEI rerank APIs)")
    p.add_argument("--model", required=True, help="model folder or hub id")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=integer(0, 65535), default=8000, help="port (default 8000)")
    p.add_argument("--api-key", default=None,
                   help="require 'Authorization: Bearer KEY' on every endpoint but /health (default: $CROSSRANK_API_KEY, else none)")
    p.add_argument("--name", default=None, help="model name reported in responses (default: the folder's name)")
    p.add_argument("--max-documents", type=integer(1), default=1000, help="documents per request (default 1000)")
    p.add_argument("--max-text-chars", type=integer(1), default=100_000, help="characters of a query or document (default 100000)")
    p.add_argument("--max-body-bytes", type=integer(1), default=16 * 1024 * 1024, help="request body size (default 16 MiB)")
    p.add_argument("--max-batch-tokens", type=integer(1), default=None,
                   help="token budget of one model batch (default 4096 on CPU, 32768 on CUDA)")
    p.add_argument("--batch-wait-ms", type=number(0), default=5.0, help="wait for more requests to fill a batch (default 5)")
    p.add_argument("--max-queue", type=integer(1), default=256, help="requests admitted at once; more answer 429 (default 256)")
    p.add_argument("--timeout-s", type=number(0, above=True), default=60.0, help="per-request timeout; later answers 504 (default 60)")
    p.add_argument("--max-length", type=integer(1), default=None, help="tokens per pair (default: the model's)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when present)")
    add_backend_flags(p)
    p.add_argument("--long-passages", choices=["truncate", "window"], default="truncate",
                   help="documents longer than max_length: truncate (default) or score windows and keep the best (MaxP); "
                        "docs/long_passages.md")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    from crossrank.serving import ServerConfig

    return ServerConfig(
        host=args.host, port=args.port,
        api_key=args.api_key if args.api_key is not None else (os.environ.get("CROSSRANK_API_KEY") or None),
        model_name=args.name, max_documents=args.max_documents, max_text_chars=args.max_text_chars,
        max_body_bytes=args.max_body_bytes, max_batch_tokens=args.max_batch_tokens, batch_wait_ms=args.batch_wait_ms,
        max_queue=args.max_queue, timeout_s=args.timeout_s, access_log=args.access_log, long_passages=args.long_passages,
        log_level="debug" if getattr(args, "verbose", False) else "info",
    )


def run(args: argparse.Namespace) -> int:
    from crossrank.serving import require_server_extra
    from crossrank.serving.launch import serve_model

    try:
        require_server_extra("uvicorn")  # one line, even with --verbose, before the model loads
    except ImportError as exc:
        print(f"crossrank serve: error: {exc}", file=sys.stderr)
        return 2
    serve_model(args.model, config_from_args(args), max_length=args.max_length, device=args.device, backend=args.backend,
                precision=args.precision)
    return 0

"""Serve a cross-encoder folder (or hub id) over HTTP: what `crossrank serve` runs.

    from crossrank.serving import ServerConfig
    from crossrank.serving.launch import serve_model

    serve_model("model-dir", ServerConfig(port=8000), max_length=256)  # blocks until interrupted
"""
from __future__ import annotations

from crossrank.serving.config import ServerConfig


def serve_model(model: str, config: ServerConfig, *, max_length: int | None = None, device: str | None = None,
                backend: str | None = None, precision: str | None = None) -> None:
    """Check the `server` extra (before the model loads), load the cross-encoder `model` and serve it with uvicorn."""
    from crossrank import serving
    from crossrank.model import CrossEncoder

    serving.require_server_extra("uvicorn")
    serving.serve(CrossEncoder(model, max_length=max_length, device=device, backend=backend, precision=precision), config)

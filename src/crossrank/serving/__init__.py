"""HTTP rerank server speaking the Cohere, Jina, infinity and text-embeddings-inference APIs.

    from crossrank import CrossEncoder
    from crossrank.serving import ServerConfig, create_app, serve

    app = create_app(CrossEncoder("model-dir"), ServerConfig(api_key="secret"))  # any ASGI server
    serve(CrossEncoder("model-dir"), ServerConfig(port=8000))                  # uvicorn, blocking

The web framework (Starlette) and server (uvicorn) come with the `server` extra and are imported
only here, with an error that names the extra. See `schemas` for how request shapes are told apart.
"""
from __future__ import annotations

import importlib.util

from crossrank.serving.config import ServerConfig

__all__ = ["BackgroundServer", "ServerConfig", "create_app", "require_server_extra", "serve"]

def require_server_extra(*modules: str) -> None:
    """Raise ModuleNotFoundError naming the `server` extra when starlette (or the given modules) are missing."""
    wanted = ("starlette",) + tuple(m for m in modules if m != "starlette")
    missing = [m for m in wanted if importlib.util.find_spec(m) is None]
    if missing:
        raise ModuleNotFoundError(
            f"the crossrank rerank server needs {', '.join(missing)}, which the 'server' extra installs: "
            "pip install 'crossrank[server]'"
        )

def create_app(model, config: ServerConfig | None = None):
    """The ASGI (Starlette) app serving `model`; see `crossrank.serving.app.create_app`."""
    require_server_extra()
    from crossrank.serving.app import create_app as _create_app

    return _create_app(model, config)

def serve(model, config: ServerConfig | None = None) -> None:
    """Serve `model` with uvicorn until interrupted."""
    from crossrank.serving.server import serve as _serve

    _serve(model, config)

def __getattr__(name: str):
    if name == "BackgroundServer":
        from crossrank.serving.server import BackgroundServer

        return BackgroundServer
    raise AttributeError(f"module 'crossrank.serving' has no attribute {name!r}")

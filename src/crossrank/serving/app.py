"""The Starlette application: routes, limits, auth, micro-batched scoring and metrics."""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from crossrank.model.activation import apply_activation
from crossrank.serving.batching import MicroBatcher, prepare_pairs
from crossrank.serving.config import ServerConfig
from crossrank.serving.metrics import Metrics
from crossrank.serving.openapi import DOCS_HTML, openapi_spec
from crossrank.serving.schemas import RequestError, build_response, parse_request

logger = logging.getLogger(__name__)

RERANK_PATHS = ("/rerank", "/v1/rerank", "/v2/rerank", "/infinity/rerank")
OPEN_PATHS = ("/health",)  # answered without the API key


@dataclass
class ServingState:
    model: object
    config: ServerConfig
    model_name: str
    metrics: Metrics
    batcher: MicroBatcher
    pending: int = 0  # rerank requests admitted and not yet answered (event-loop side only)


def create_app(model, config: ServerConfig | None = None) -> Starlette:
    """An ASGI app serving `model` (a one-output CrossEncoder) under `config`.

    The model worker thread starts with the app's lifespan (or at the first request) and stops
    at shutdown. `app.state.crossrank` holds the ServingState (metrics, batcher, config).
    """
    config = config or ServerConfig()
    if int(getattr(model, "num_labels", 1)) != 1:
        raise ValueError(f"the rerank server needs a model with one output, but this one has {model.num_labels}")
    metrics = Metrics()
    name = config.model_name or Path(str(getattr(model, "path", "crossrank"))).name or "crossrank"
    state = ServingState(
        model=model, config=config, model_name=name, metrics=metrics,
        batcher=MicroBatcher(model, config.batch_tokens_for(getattr(model, "device", "cpu")), config.batch_wait_ms, metrics,
                             long_passages=config.long_passages),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state.batcher.start()
        try:
            yield
        finally:
            state.batcher.stop()

    async def rerank(request: Request) -> Response:
        return await _rerank(state, request)

    async def health(request: Request) -> Response:
        state.batcher.start()
        return JSONResponse({"status": "ok", "model": state.model_name, "queue_depth": state.pending})

    async def info(request: Request) -> Response:
        return JSONResponse({
            "model": state.model_name, "max_length": int(model.max_length), "num_labels": 1,
            "device": str(getattr(model, "device", "")), "max_batch_tokens": state.batcher.max_batch_tokens,
            "config": config.to_dict(),
        })

    async def metrics_endpoint(request: Request) -> Response:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    spec = openapi_spec(f"crossrank rerank server ({name})", _version())

    async def openapi(request: Request) -> Response:
        return JSONResponse(spec)

    async def docs(request: Request) -> Response:
        return HTMLResponse(DOCS_HTML)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        metrics.observe_error(code)
        return JSONResponse({"error": code, "detail": f"{request.method} {request.url.path}: {exc.detail}"},
                            exc.status_code, headers=getattr(exc, "headers", None))

    routes = [Route(p, rerank, methods=["POST"]) for p in RERANK_PATHS] + [
        Route("/health", health, methods=["GET"]),
        Route("/info", info, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    known = {r.path for r in routes}
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_Guard, state=state, known=known)],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.crossrank = state
    return app


async def _rerank(state: ServingState, request: Request) -> Response:
    start = time.perf_counter()
    config = state.config
    try:
        raw = await _read_body(request, config.max_body_bytes)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(400, "invalid_json", f"the request body is not valid JSON: {exc}") from None
        req = parse_request(body, request.url.path, max_documents=config.max_documents, max_text_chars=config.max_text_chars)
        if state.pending >= config.max_queue:
            raise RequestError(429, "queue_full", f"{state.pending} requests are already waiting (max_queue={config.max_queue}); retry later",
                               headers={"Retry-After": "1"})
        state.pending += 1
        state.metrics.add_queue_depth(1)
        try:
            left = config.timeout_s - (time.perf_counter() - start)
            result = await asyncio.wait_for(_score(state, req), timeout=max(left, 0.001))
        except asyncio.TimeoutError:
            raise RequestError(504, "timeout", f"the request was not answered within timeout_s={config.timeout_s:g} s") from None
        finally:
            state.pending -= 1
            state.metrics.add_queue_depth(-1)
        response: Response = JSONResponse(result)
    except RequestError as exc:
        state.metrics.observe_error(exc.error)
        response = JSONResponse(exc.body(), exc.status, headers=exc.headers)
    except Exception:  # a failed model call: say so (the cause goes to the log, not to the client), keep serving
        logger.exception("rerank request failed")
        state.metrics.observe_error("internal_error")
        response = JSONResponse({"error": "internal_error", "detail": "scoring this request failed; the server log has the cause"}, 500)
    return response


async def _score(state: ServingState, req) -> object:
    state.batcher.start()  # no-op once running (started by the lifespan)
    prepared = await run_in_threadpool(prepare_pairs, state.model, req, state.config.long_passages)
    futures = state.batcher.submit(prepared)
    try:
        parts = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
    finally:
        for f in futures:  # on timeout or disconnect: pieces not started yet are skipped
            f.cancel()
    logits = np.concatenate(parts) if len(parts) > 1 else parts[0]
    scores = logits if req.raw_scores else apply_activation(torch.from_numpy(logits), "sigmoid").numpy()
    return build_response(req, scores, prepared.tokens, state.model_name)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, "body_too_large", f"the request body has {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, "body_too_large", f"the request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class _Guard:
    """ASGI middleware: API-key check (every path but /health) and per-request metrics."""

    def __init__(self, app, state: ServingState, known: set[str]):
        self.app = app
        self.state = state
        self.known = known
        key = state.config.api_key
        self.expected = key.encode() if key else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        endpoint = path if path in self.known else "other"
        start = time.perf_counter()
        status = 500

        async def send_with_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if self.expected is not None and path not in OPEN_PATHS and not self._authorized(scope):
                self.state.metrics.observe_error("unauthorized")
                response = JSONResponse(
                    {"error": "unauthorized", "detail": "this server needs an API key: send the header 'Authorization: Bearer <key>'"},
                    401, headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send_with_status)
            else:
                await self.app(scope, receive, send_with_status)
        finally:
            seconds = time.perf_counter() - start if path in RERANK_PATHS else None
            self.state.metrics.observe_request(endpoint, method, status, seconds)

    def _authorized(self, scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.expected)
        return False


def _version() -> str:
    from crossrank import __version__

    return __version__

"""Serving fixtures: the tiny model, and real servers on 127.0.0.1 at free ports (stopped after use)."""
from __future__ import annotations

import threading

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed (pip install 'crossrank[server]')")
pytest.importorskip("uvicorn", reason="the server extra is not installed (pip install 'crossrank[server]')")
httpx = pytest.importorskip("httpx")


@pytest.fixture(scope="session")
def tiny_ce(tiny_model_dir):
    from crossrank import CrossEncoder

    return CrossEncoder(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def start_server():
    """start_server(model, **config) -> a running BackgroundServer; all are stopped at module end."""
    from crossrank.serving import BackgroundServer, ServerConfig

    servers = []

    def start(model, **settings):
        settings.setdefault("port", 0)
        settings.setdefault("log_level", "warning")
        server = BackgroundServer(model, ServerConfig(**settings)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def tiny_server(start_server, tiny_ce):
    return start_server(tiny_ce)


@pytest.fixture
def client(tiny_server):
    with httpx.Client(base_url=tiny_server.url, timeout=30) as c:
        yield c


class GatedModel:
    """Wraps a model; predict waits until `gate` is set (to hold the worker busy), or raises `fail`."""

    def __init__(self, model):
        self._model = model
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail: Exception | None = None
        self.calls: list[int] = []

    def __getattr__(self, name):
        return getattr(self._model, name)

    def predict(self, pairs, **kwargs):
        self.entered.set()
        self.gate.wait(30)
        if self.fail is not None:
            raise self.fail
        self.calls.append(len(pairs))
        return self._model.predict(pairs, **kwargs)


@pytest.fixture
def gated(tiny_ce):
    model = GatedModel(tiny_ce)
    yield model
    model.gate.set()


@pytest.fixture
def metric():
    """metric(prometheus_text, sample) -> the value of the line `sample value`."""

    def read(text: str, name: str) -> float:
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)

    return read

"""Running the app: `serve` (blocking, what `crossrank serve` calls) and `BackgroundServer` (a thread)."""
from __future__ import annotations

import logging
import socket
import threading
import time

from crossrank.serving.config import ServerConfig

logger = logging.getLogger(__name__)


def _uvicorn_config(app, config: ServerConfig):
    import uvicorn

    return uvicorn.Config(
        app, host=config.host, port=config.port, log_level=config.log_level.lower(),
        access_log=config.access_log, lifespan="on", timeout_graceful_shutdown=5,
    )


def serve(model, config: ServerConfig | None = None) -> None:
    """Serve `model` over HTTP until interrupted (Ctrl-C / SIGTERM)."""
    from crossrank.serving import create_app, require_server_extra

    require_server_extra("uvicorn")
    import uvicorn

    config = config or ServerConfig()
    app = create_app(model, config)
    logger.info("serving %s on http://%s:%d (auth %s)", app.state.crossrank.model_name, config.host, config.port,
                "on" if config.api_key else "off")
    uvicorn.Server(_uvicorn_config(app, config)).run()


class BackgroundServer:
    """The server on a thread of this process, for tests and notebooks.

    `config.port=0` picks a free port; `url` says which. Use as a context manager or call
    `start()` / `stop()`.
    """

    def __init__(self, model, config: ServerConfig | None = None):
        from crossrank.serving import create_app, require_server_extra

        require_server_extra("uvicorn")
        self.config = config or ServerConfig(port=0)
        self.app = create_app(model, self.config)
        self._server = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the server is not started")
        return f"http://{self.config.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> "BackgroundServer":
        import uvicorn

        sock = socket.socket(socket.AF_INET6 if ":" in self.config.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.config.port))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(_uvicorn_config(self.app, self.config))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name="crossrank-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start on {self.config.host}:{self.port}")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

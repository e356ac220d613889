"""ServerConfig: every setting of the rerank server in one dataclass (filled from flags or code)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from crossrank.data.fields import is_int_at_least


@dataclass
class ServerConfig:
    """Settings of `crossrank serve` / `create_app`.

    Args:
        host, port: where `serve` listens (loopback by default).
        api_key: when set, every endpoint but /health needs `Authorization: Bearer <api_key>`.
        model_name: the name reported in responses; default the model folder's name.
        max_documents: documents (or TEI `texts`) per request.
        max_text_chars: characters of the query and of each document.
        max_body_bytes: size of a request body.
        max_batch_tokens: token budget of one model batch; requests are merged up to it and a
            larger request is split into pieces of about this size. Default 4096 on CPU (the
            fastest torch fp32 batches measured there), 32768 on CUDA.
        batch_wait_ms: how long the worker waits for more requests to fill a batch.
        max_queue: requests admitted at once (queued or being scored); more answer 429.
        timeout_s: per request, from arrival to answer; later answers 504.
        log_level, access_log: uvicorn logging (access log off by default: it costs throughput).
        long_passages: "truncate" (default) cuts a document to what fits beside the query in the
            model's max_length; "window" scores a longer document as overlapping windows of what
            fits (stride half a window) and answers the best window's score (MaxP), as Cohere
            chunks long documents. `max_tokens_per_doc` in a request caps a document first.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    model_name: str | None = None
    max_documents: int = 1000
    max_text_chars: int = 100_000
    max_body_bytes: int = 16 * 1024 * 1024
    max_batch_tokens: int | None = None
    batch_wait_ms: float = 5.0
    max_queue: int = 256
    timeout_s: float = 60.0
    log_level: str = "info"
    access_log: bool = False
    long_passages: str = "truncate"

    def __post_init__(self) -> None:
        for name in ("max_documents", "max_text_chars", "max_body_bytes", "max_batch_tokens", "max_queue"):
            value = getattr(self, name)
            if value is None and name == "max_batch_tokens":
                continue
            if not is_int_at_least(value, 1):
                raise ValueError(f"ServerConfig.{name} must be an integer >= 1, but got {value!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"ServerConfig.port must be in 0..65535, but got {self.port!r}")
        from crossrank.data.ranges import Range, check_ranges

        check_ranges("ServerConfig", self, {"batch_wait_ms": Range(0), "timeout_s": Range(0, open_low=True)})
        if self.long_passages not in ("truncate", "window"):
            raise ValueError(f"ServerConfig.long_passages must be 'truncate' or 'window', but got {self.long_passages!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("ServerConfig.api_key must not be empty (leave it None to turn auth off)")

    def batch_tokens_for(self, device) -> int:
        """max_batch_tokens, or its default for a model on `device`."""
        if self.max_batch_tokens is not None:
            return self.max_batch_tokens
        return 32768 if str(device).startswith("cuda") else 4096

    def to_dict(self, redact: bool = True) -> dict:
        out = asdict(self)
        if redact and out["api_key"] is not None:
            out["api_key"] = "***"
        return out

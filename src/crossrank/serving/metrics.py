"""Prometheus text-format metrics, written by hand (no extra dependency), safe across threads."""
from __future__ import annotations

import bisect
import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


class Histogram:
    def __init__(self, buckets):
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str) -> list[str]:
        out, running = [], 0
        for bound, n in zip(self.buckets + (float("inf"),), self.counts):
            running += n
            le = "+Inf" if bound == float("inf") else _num(bound)
            out.append(f'{name}_bucket{{le="{le}"}} {running}')
        out.append(f"{name}_sum {_num(self.sum)}")
        out.append(f"{name}_count {self.count}")
        return out


class Metrics:
    """Requests, errors, latency, batch sizes and queue depth of one server."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)  # (endpoint, method, status)
        self.errors: dict[str, int] = defaultdict(int)  # error code
        self.latency = Histogram(LATENCY_BUCKETS)  # /rerank requests, arrival to answer
        self.batch_pairs = Histogram(BATCH_BUCKETS)  # pairs per model call
        self.batch_requests = Histogram(BATCH_BUCKETS)  # request pieces merged per model call
        self.pairs_scored = 0
        self.queue_depth = 0  # requests admitted and not yet answered
        self.queued_pieces = 0  # pieces waiting for the worker

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float | None) -> None:
        with self._lock:
            self.requests[(endpoint, method, status)] += 1
            if seconds is not None:
                self.latency.observe(seconds)

    def observe_error(self, error: str) -> None:
        with self._lock:
            self.errors[error] += 1

    def observe_batch(self, pairs: int, pieces: int) -> None:
        with self._lock:
            self.batch_pairs.observe(pairs)
            self.batch_requests.observe(pieces)
            self.pairs_scored += pairs

    def add_queue_depth(self, delta: int) -> None:
        with self._lock:
            self.queue_depth += delta

    def add_queued_pieces(self, delta: int) -> None:
        with self._lock:
            self.queued_pieces += delta

    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP crossrank_requests_total HTTP requests by endpoint, method and status.",
                "# TYPE crossrank_requests_total counter",
            ]
            for (endpoint, method, status), n in sorted(self.requests.items()):
                lines.append(f'crossrank_requests_total{{endpoint="{endpoint}",method="{method}",status="{status}"}} {n}')
            lines += ["# HELP crossrank_request_errors_total Refused or failed requests by error code.",
                      "# TYPE crossrank_request_errors_total counter"]
            for error, n in sorted(self.errors.items()):
                lines.append(f'crossrank_request_errors_total{{error="{error}"}} {n}')
            lines += ["# HELP crossrank_request_duration_seconds Rerank request latency, arrival to answer.",
                      "# TYPE crossrank_request_duration_seconds histogram"]
            lines += self.latency.lines("crossrank_request_duration_seconds")
            lines += ["# HELP crossrank_batch_pairs Pairs per model batch.", "# TYPE crossrank_batch_pairs histogram"]
            lines += self.batch_pairs.lines("crossrank_batch_pairs")
            lines += ["# HELP crossrank_batch_requests Request pieces merged into one model batch.",
                      "# TYPE crossrank_batch_requests histogram"]
            lines += self.batch_requests.lines("crossrank_batch_requests")
            lines += ["# HELP crossrank_pairs_scored_total Query-document pairs scored.",
                      "# TYPE crossrank_pairs_scored_total counter", f"crossrank_pairs_scored_total {self.pairs_scored}",
                      "# HELP crossrank_queue_depth Rerank requests admitted and not yet answered.",
                      "# TYPE crossrank_queue_depth gauge", f"crossrank_queue_depth {self.queue_depth}",
                      "# HELP crossrank_queued_pieces Request pieces waiting for the model worker.",
                      "# TYPE crossrank_queued_pieces gauge", f"crossrank_queued_pieces {self.queued_pieces}"]
        return "\n".join(lines) + "\n"


def _num(x: float) -> str:
    return repr(float(x)) if not float(x).is_integer() else f"{float(x):.1f}"

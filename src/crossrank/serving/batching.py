"""Dynamic micro-batching: one worker thread runs the model on pieces of many requests at once.

Request handlers tokenise their pairs (to know their size), split them into pieces of at most
`max_batch_tokens` tokens and queue the pieces; each piece carries a future. The worker takes the
first waiting piece, then gathers more for up to `batch_wait_ms` or until the token budget is
full, and scores them in one `CrossEncoder.predict` call (which sorts them by length and pads
per sub-batch). Logits come back through the futures; the handler applies the activation.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from crossrank.model.windows import WindowConfig, plan_windows
from crossrank.serving.schemas import RequestError, RerankRequest

logger = logging.getLogger(__name__)


@dataclass
class PreparedPairs:
    """A request's (query, document) pairs as scored, with their token counts."""

    pairs: list[tuple[str, str]]
    lengths: list[int]

    @property
    def tokens(self) -> int:
        return int(sum(self.lengths))


def prepare_pairs(model, request: RerankRequest, long_passages: str = "truncate") -> PreparedPairs:
    """Pairs of a request and their tokens; applies `max_tokens_per_doc` and TEI's `truncate: false`.

    Documents cut by `max_tokens_per_doc` are cut in text, at the end of their last kept token,
    so the model's own tokenisation of the shorter text is what gets scored. With
    `long_passages="window"` a document's tokens are those of all its windows (what the model
    runs), and only a query that leaves no room for any document token truncates.
    """
    tok = model.pair_tokenizer
    max_length = int(model.max_length)
    query_len = len(tok.encode_texts([request.query])[0].ids)
    encodings = tok.encode_texts(request.documents)
    documents = list(request.documents)
    doc_lens = [len(e.ids) for e in encodings]
    cap = request.max_tokens_per_doc
    if cap is not None:
        for i, enc in enumerate(encodings):
            if doc_lens[i] > cap:
                documents[i] = documents[i][: enc.offsets[cap - 1][1]]
                doc_lens[i] = cap
    full = [query_len + n + tok.n_special for n in doc_lens]
    windowed = long_passages == "window" and query_len + tok.n_special < max_length
    if not request.truncate:
        over = [] if windowed else [i for i, n in enumerate(full) if n > max_length]
        if over:
            raise RequestError(
                413, "input_too_long",
                f"{len(over)} of {len(full)} (query, text) pairs are longer than the model's max_length="
                f"{max_length} tokens (first: texts[{over[0]}], {full[over[0]]} tokens); "
                "send `truncate: true` to cut them",
            )
    if windowed:
        budget, config = max_length - tok.n_special, WindowConfig()
        lengths = [sum(query_len + end - start + tok.n_special for start, end in plan_windows(query_len, n, budget, config))
                   for n in doc_lens]
    else:
        lengths = [min(n, max_length) for n in full]
    return PreparedPairs([(request.query, d) for d in documents], lengths)


@dataclass
class _Piece:
    pairs: list[tuple[str, str]]
    tokens: int
    future: Future


class MicroBatcher:
    """Scores queued pieces of requests on one worker thread, merging them up to a token budget."""

    def __init__(self, model, max_batch_tokens: int = 4096, batch_wait_ms: float = 5.0, metrics=None,
                 long_passages: str = "truncate"):
        self.model = model
        # windows of a document stay in its piece: predict splits and aggregates them (MaxP)
        self.scoring = {"long_passages": "window"} if long_passages == "window" else {}
        self.max_batch_tokens = int(max_batch_tokens)
        self.wait_s = float(batch_wait_ms) / 1000.0
        self.metrics = metrics
        self._queue: queue.Queue[_Piece | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self._thread = threading.Thread(target=self._run, name="crossrank-batcher", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout)
        while True:  # whatever is left will never be scored
            try:
                piece = self._take(False)
            except queue.Empty:
                break
            if piece is not None:
                piece.future.cancel()

    def submit(self, prepared: PreparedPairs) -> list[Future]:
        """Queue a request's pairs in pieces of at most max_batch_tokens; one future (logits) per piece."""
        futures = []
        start, tokens = 0, 0
        for i, n in enumerate(prepared.lengths):
            if tokens and tokens + n > self.max_batch_tokens:
                futures.append(self._put(prepared.pairs[start:i], tokens))
                start, tokens = i, 0
            tokens += n
        futures.append(self._put(prepared.pairs[start:], tokens))
        return futures

    def _put(self, pairs, tokens) -> Future:
        future: Future = Future()
        if self.metrics is not None:
            self.metrics.add_queued_pieces(1)
        self._queue.put(_Piece(pairs, tokens, future))
        return future

    def _take(self, block: bool, timeout: float | None = None) -> _Piece | None:
        piece = self._queue.get(block, timeout)
        if piece is not None and self.metrics is not None:
            self.metrics.add_queued_pieces(-1)
        return piece

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        carry: _Piece | None = None
        stopping = False
        while not stopping:
            first = carry if carry is not None else self._take(True)
            carry = None
            if first is None:
                break
            batch, tokens = [first], first.tokens
            deadline = time.monotonic() + self.wait_s
            while tokens < self.max_batch_tokens:
                remaining = deadline - time.monotonic()
                try:
                    nxt = self._take(remaining > 0, max(remaining, 0.0)) if remaining > 0 else self._take(False)
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                if tokens + nxt.tokens > self.max_batch_tokens:
                    carry = nxt
                    break
                batch.append(nxt)
                tokens += nxt.tokens
            self._score([p for p in batch if p.future.set_running_or_notify_cancel()])
        if carry is not None:
            carry.future.cancel()

    def _score(self, batch: list[_Piece]) -> None:
        if not batch:
            return
        pairs = [pair for piece in batch for pair in piece.pairs]
        try:
            logits = self.model.predict(
                pairs, batch_size=len(pairs), activation="identity", show_progress_bar=False,
                max_tokens_per_batch=self.max_batch_tokens, **self.scoring,
            )
            logits = np.asarray(logits, dtype=np.float32)
        except Exception as exc:  # the requests fail; the worker lives on
            logger.exception("scoring a batch of %d pairs failed", len(pairs))
            for piece in batch:
                piece.future.set_exception(exc)
            return
        if self.metrics is not None:
            self.metrics.observe_batch(len(pairs), len(batch))
        start = 0
        for piece in batch:
            piece.future.set_result(logits[start : start + len(piece.pairs)])
            start += len(piece.pairs)

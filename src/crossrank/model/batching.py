"""Batching for scoring: pairs sorted by token length, batches cut by a token budget, and a
background thread that tokenises and pads the next batches while the model runs the current one.

    for index, arrays in prefetch(padded_batches(pair_tokenizer, pairs, max_tokens=2048)):
        scores[index] = run_model(arrays)   # `index`: the batch's positions in the input

A batch holds at most `max_tokens` padded tokens (rows x its longest row) and, when given, at most
`batch_size` rows: short pairs travel in big batches, long ones in small batches, and every batch
is padded only to its own longest pair. Pairs are tokenised in chunks (the first one small, so the
model starts at once); each chunk is sorted by length, longest first.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from crossrank.model.tokenization import EncodedPairs, PairTokenizer, pad_batch

# Padded tokens per batch when the caller gives none, by backend. On CPU, smaller batches run
# faster (cache-resident activations): on DL19 BM25 top-100 pairs with all-MiniLM-L6-v2 (mean ~93
# tokens), 2-core Zen 5 host, torch fp32 ran 67 / 64 / 57 / 49 pairs/s and ONNX fp32 71 / 64 / 59 / 49
# at 1024 / 2048 / 4096 / 8192 tokens (benchmarks/RESULTS.md, "token budget"; a shared, noisy host,
# and an earlier sweep by rows put torch's best at 32-64 rows, so torch keeps 2048). OpenVINO keeps
# 2048 too: on a 2-core AMD EPYC with AVX512-BF16, 512 DL19 pairs (max_length 128, pre-tokenised)
# ran f32 92-93 / 84-85 and bf16 164-174 / 155-161 pairs/s at 1024 / 2048 tokens, but SciFact
# windows of 96 tokens ran bf16 152 / 167 windows/s, and a whole quickstart at 1024 scored DL19 at
# 145.7 pairs/s and SciFact at 48.1 against 146.9 and 51.0 at 2048. On CUDA, bigger batches keep the
# GPU busy.
DEFAULT_MAX_TOKENS = {"cpu": 2048, "onnx": 1024, "openvino": 2048, "cuda": 32768}
FIRST_CHUNK = 256  # pairs tokenised before the first batch runs
CHUNK = 2048  # pairs per later chunk (sorted by length within it)


def length_sorted_batches(lengths: np.ndarray, batch_size: int | None, max_tokens: int | None = None) -> list[np.ndarray]:
    """Split indices into batches of similar length, longest first.

    A batch holds at most `batch_size` pairs (None: no limit) and, when `max_tokens` is given,
    at most `max_tokens` padded tokens (rows x longest row); a pair longer than the budget goes
    alone. Callers restore input order from the returned indices.
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, but got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens_per_batch must be >= 1, but got {max_tokens}")
    if batch_size is None and max_tokens is None:
        raise ValueError("give batch_size, max_tokens_per_batch or both")
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    n = len(order)
    while start < n:
        width = int(lengths[order[start]])  # the longest pair of this batch comes first
        size = n - start if batch_size is None else batch_size
        if max_tokens is not None:
            size = max(1, min(size, max_tokens // max(width, 1)))
        batches.append(order[start : start + size])
        start += size
    return batches


def length_groups(lengths: np.ndarray, overhead_tokens: int = 32) -> list[np.ndarray]:
    """Split one batch into sub-batches of similar length that cost the fewest padded tokens.

    Indices are sorted by length and cut into contiguous groups minimising the padded tokens
    (rows x longest row, summed over groups) plus `overhead_tokens` per group, the fixed cost of
    one more forward pass counted in tokens. Exact (dynamic programming over the sorted lengths,
    O(n^2)); a batch of equal lengths stays one group. Used by training, where a batch's pairs
    are fixed by the sampler but need not share one padded tensor.
    """
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or len(lengths) == 0:
        raise ValueError(f"length_groups expects a non-empty 1-d array of lengths, but got shape {lengths.shape}")
    if overhead_tokens < 0:
        raise ValueError(f"length_groups expects overhead_tokens >= 0, but got {overhead_tokens}")
    order = np.argsort(lengths, kind="stable")
    ordered = lengths[order]
    n = len(ordered)
    best = np.zeros(n + 1)
    cut = np.zeros(n + 1, dtype=np.int64)
    for end in range(1, n + 1):  # best[end]: cheapest split of ordered[:end]; the last group is [start, end)
        starts = np.arange(end)
        costs = best[:end] + ordered[end - 1] * (end - starts) + overhead_tokens
        cut[end] = int(np.argmin(costs))
        best[end] = costs[cut[end]]
    groups = []
    end = n
    while end > 0:
        groups.append(order[cut[end] : end])
        end = cut[end]
    return groups[::-1]


@dataclass
class BatchStats:
    """What `padded_batches` saw, filled in as it goes (read it after the loop)."""

    pairs: int = 0
    rows: int = 0  # encoded inputs: one per pair, or one per window (see `encode`)
    truncated: int = 0
    batches: int = 0
    padded_tokens: int = 0
    real_tokens: int = 0


def padded_batches(
    tokenizer: PairTokenizer,
    pairs: Sequence[tuple[str, str]],
    batch_size: int | None = None,
    max_tokens: int | None = 2048,
    *,
    with_token_types: bool = True,
    stats: BatchStats | None = None,
    first_chunk: int = FIRST_CHUNK,
    chunk: int = CHUNK,
    encode: Callable[[Sequence[tuple[str, str]]], EncodedPairs] | None = None,
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Yield (row positions, padded int64 arrays) for every batch of `pairs`.

    `encode` turns a chunk of pairs into rows; by default one row per pair (`tokenizer.encode`),
    so row positions are input positions. An `encode` that gives several rows per pair (windows
    of long passages, `crossrank.model.windows.WindowEncoder`) numbers rows across chunks in order.
    """
    stats = stats if stats is not None else BatchStats()
    start = 0
    row = 0
    size = first_chunk
    while start < len(pairs):
        part = pairs[start : start + size]
        encoded = encode(part) if encode is not None else tokenizer.encode([q for q, _ in part], [p for _, p in part])
        stats.pairs += len(part)
        stats.rows += len(encoded)
        stats.truncated += encoded.truncated
        for local in length_sorted_batches(encoded.lengths, batch_size, max_tokens):
            arrays = pad_batch(encoded, local, tokenizer.pad_id, with_token_types=with_token_types)
            stats.batches += 1
            stats.padded_tokens += arrays["input_ids"].size
            stats.real_tokens += int(encoded.lengths[local].sum())
            yield local + row, arrays
        start += len(part)
        row += len(encoded)
        size = chunk


_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Iterate over `items` produced by a background thread, at most `depth` ahead.

    Tokenising and padding run in Python and the Rust tokenizer while the model's kernels (which
    release the GIL) run on the caller's thread, so the two overlap. An exception in the
    producer is raised in the caller; a caller that stops early stops the producer.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer
            put(_Failure(exc))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="crossrank-batches", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)

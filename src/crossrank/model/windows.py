"""Long passages as overlapping token windows, each scored with the query, aggregated per passage.

A passage is tokenised once (no special tokens) and cut into windows of at most `size` passage
tokens that start every `stride` tokens: [0, size), [stride, stride + size), ... until a window
reaches the passage's end (the last one may be shorter). Each window becomes an ordinary pair
`query + window` with the model's special tokens, so every pair fits `max_length` and goes through
the same length-sorted, token-budget batching as unwindowed pairs. Window scores are mapped back to
their passage by `aggregate`: "max" (MaxP), "first" (FirstP) or "mean".

`keep` bounds the cost of long passages (a cascade inside each passage, as IDCM selects passages
before its expensive model): only the first window and the `keep - 1` others that share most of the
query's tokens are scored. A query token counts in a window with weight log(1 + n / df), df being
how many of the passage's n windows hold it: a token every window holds does not tell windows apart.
Selection looks at one pair only, so scores never depend on which other pairs share a batch.

Defaults: a window holds what fits beside the query in `max_length` (so the first window is
exactly what truncation keeps, and FirstP equals truncation); the stride is half the window (50%
overlap). A query that alone fills `max_length` leaves no room for windows: that pair is scored as
truncation scores it (one window, query cut to leave one passage token).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Encoding

from crossrank.model.tokenization import EncodedPairs, PairTokenizer

LONG_PASSAGES = ("truncate", "window")
AGGREGATES = ("max", "first", "mean")
_ALIASES = {"maxp": "max", "firstp": "first", "meanp": "mean", "avg": "mean"}


@dataclass(frozen=True)
class WindowConfig:
    """How long passages are windowed.

    Args:
        size: passage tokens per window; None (default) what fits beside the query in max_length.
            A size larger than that is reduced to it for that pair.
        stride: tokens from one window's start to the next; None (default) half the window.
            Must not exceed `size` (no passage token is skipped).
        aggregate: "max" (MaxP), "first" (FirstP) or "mean" of the window scores (raw logits;
            the activation is applied to the aggregate).
        keep: windows scored per passage: the first and the `keep - 1` others sharing most query
            tokens (see the module docstring); None (default) every window.
    """

    size: int | None = None
    stride: int | None = None
    aggregate: str = "max"
    keep: int | None = None

    def __post_init__(self) -> None:
        for name in ("size", "stride", "keep"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
                raise ValueError(f"window {name} expects an integer or None, but got {value!r}")
        if self.size is not None and self.size < 1:
            raise ValueError(f"window size expects size >= 1, but got size={self.size}")
        if self.keep is not None and self.keep < 1:
            raise ValueError(f"window keep expects keep >= 1 (windows scored per passage), but got keep={self.keep}")
        if self.stride is not None and (self.stride < 1 or (self.size is not None and self.stride > self.size)):
            bound = "size" if self.size is None else f"size={self.size}"
            raise ValueError(f"window stride expects 1 <= stride <= size, but got stride={self.stride} ({bound})")
        how = _ALIASES.get(str(self.aggregate).lower(), str(self.aggregate).lower())
        if how not in AGGREGATES:
            raise ValueError(f"window aggregate expects one of {', '.join(AGGREGATES)}, but got {self.aggregate!r}")
        object.__setattr__(self, "aggregate", how)

    def for_room(self, room: int) -> tuple[int, int]:
        """(size, stride) for a pair whose query leaves `room` >= 1 passage tokens in max_length."""
        size = room if self.size is None else min(self.size, room)
        stride = max(1, size // 2) if self.stride is None else min(self.stride, size)
        return size, stride


def resolve_long_passages(long_passages: str, window: WindowConfig | None) -> WindowConfig | None:
    """Check `predict`'s long-passage arguments; the WindowConfig to use, or None for truncation."""
    if long_passages not in LONG_PASSAGES:
        raise ValueError(f"long_passages expects one of {', '.join(map(repr, LONG_PASSAGES))}, but got {long_passages!r}")
    if window is not None and not isinstance(window, WindowConfig):
        raise TypeError(f"window expects a WindowConfig, but got {type(window).__name__}")
    if long_passages == "truncate":
        if window is not None:
            raise ValueError("window settings were given with long_passages='truncate'; pass long_passages='window' to use them")
        return None
    return window or WindowConfig()


def window_spans(n_tokens: int, size: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) token spans of the windows of a passage of `n_tokens` tokens (one, maybe empty, at least)."""
    if size < 1 or not 1 <= stride <= size:
        raise ValueError(f"window_spans expects size >= 1 and 1 <= stride <= size, but got size={size}, stride={stride}")
    if n_tokens <= size:
        return [(0, n_tokens)]
    spans = []
    start = 0
    while True:
        end = min(start + size, n_tokens)
        spans.append((start, end))
        if end == n_tokens:
            return spans
        start += stride


def plan_windows(n_query: int, n_passage: int, budget: int, config: WindowConfig) -> list[tuple[int, int]]:
    """Windows of one pair; `budget` = max_length minus the pair's special tokens."""
    room = budget - n_query
    if room < 1:  # the query alone fills max_length: scored as truncation scores it
        return [(0, n_passage)]
    return window_spans(n_passage, *config.for_room(room))


@dataclass
class Windows:
    """Encoded windows of many pairs: `owner[i]` is the pair that window i belongs to."""

    encoded: EncodedPairs
    owner: np.ndarray
    split: int  # passages cut into more than one window


def encode_windows(tokenizer: PairTokenizer, pairs: Sequence[tuple[str, str]], config: WindowConfig) -> Windows:
    """Tokenise each distinct query and passage once and build the (query, window) inputs, in pair order."""
    q_enc = _encode_distinct(tokenizer, [q for q, _ in pairs])
    p_enc = _encode_distinct(tokenizer, [p for _, p in pairs])
    budget = tokenizer.max_length - tokenizer.n_special
    queries, windows, owner = [], [], []
    split = 0
    for i, (q, p) in enumerate(zip(q_enc, p_enc)):
        n = len(p.ids)
        spans = plan_windows(len(q.ids), n, budget, config)
        if config.keep is not None:
            spans = select_windows(q.ids, p.ids, spans, config.keep)
        split += len(spans) > 1
        for start, end in spans:
            queries.append(q)
            windows.append(p if (start, end) == (0, n) else _window(p, start, end))
            owner.append(i)
    return Windows(tokenizer.combine(queries, windows), np.asarray(owner, dtype=np.int64), split)


def select_windows(query_ids: Sequence[int], passage_ids: Sequence[int], spans: list[tuple[int, int]],
                   keep: int) -> list[tuple[int, int]]:
    """The first span and the `keep - 1` others whose tokens match the query most, in passage order.

    A window's match is the sum over the distinct query tokens it holds of log(1 + n / df), where df
    counts the passage's n windows holding the token; ties go to the earlier window.
    """
    if keep < 1:
        raise ValueError(f"select_windows expects keep >= 1, but got keep={keep}")
    if len(spans) <= keep:
        return list(spans)
    query = set(query_ids)
    held = [query.intersection(passage_ids[start:end]) for start, end in spans]
    df: dict[int, int] = {}
    for tokens in held:
        for t in tokens:
            df[t] = df.get(t, 0) + 1
    n = len(spans)
    match = [sum(np.log1p(n / df[t]) for t in tokens) for tokens in held]
    others = sorted(range(1, n), key=lambda i: (-match[i], i))[: keep - 1]
    return [spans[i] for i in sorted([0, *others])]


class WindowEncoder:
    """`encode` for `crossrank.model.batching.padded_batches`: chunks of pairs in, their windows out.

    Remembers which pair every window belongs to (read `owner` after the batches are consumed).
    """

    def __init__(self, tokenizer: PairTokenizer, config: WindowConfig):
        self.tokenizer = tokenizer
        self.config = config
        self.pairs = 0
        self.split = 0
        self._owners: list[np.ndarray] = []

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> EncodedPairs:
        windows = encode_windows(self.tokenizer, pairs, self.config)
        self._owners.append(windows.owner + self.pairs)
        self.pairs += len(pairs)
        self.split += windows.split
        return windows.encoded

    @property
    def owner(self) -> np.ndarray:
        return np.concatenate(self._owners) if self._owners else np.zeros(0, dtype=np.int64)


def aggregate(window_scores: np.ndarray, owner: np.ndarray, n_passages: int, how: str) -> np.ndarray:
    """One float32 score per passage (in passage order) from its windows' scores: max, first or mean.

    Windows of a passage appear in passage order (the first one is the passage's start).
    """
    scores = np.asarray(window_scores, dtype=np.float64)
    owner = np.asarray(owner, dtype=np.int64)
    if scores.ndim != 1 or scores.shape != owner.shape:
        raise ValueError(f"aggregate expects one score per window, but got scores {scores.shape} and owners {owner.shape}")
    counts = np.bincount(owner, minlength=n_passages) if len(owner) else np.zeros(n_passages, dtype=np.int64)
    if len(counts) != n_passages or (counts == 0).any():
        raise ValueError(f"aggregate expects at least one window for each of the {n_passages} passages and no other")
    if how == "max":
        out = np.full(n_passages, -np.inf)
        np.maximum.at(out, owner, scores)
    elif how == "first":
        _, first = np.unique(owner, return_index=True)
        out = scores[first]
    elif how == "mean":
        out = np.bincount(owner, weights=scores, minlength=n_passages) / counts
    else:
        raise ValueError(f"aggregate expects one of {', '.join(AGGREGATES)}, but got {how!r}")
    return out.astype(np.float32)


def _encode_distinct(tokenizer: PairTokenizer, texts: list[str]) -> list:
    distinct = list(dict.fromkeys(texts))
    encoded = dict(zip(distinct, tokenizer.encode_texts(distinct)))
    return [encoded[t] for t in texts]


def _window(encoding, start: int, end: int):
    # Encoding.truncate works in place: cut a copy, keeping the shared passage encoding intact
    copy = Encoding.merge([encoding], growing_offsets=False)
    copy.truncate(end)
    copy.truncate(end - start, direction="left")
    return copy

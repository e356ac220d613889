"""Pair tokenisation that truncates the passage before the query.

Every peer truncates pairs with `longest_first`, which cuts the query as soon as the passage is
not much longer than it. Here the passage gives up its tokens first; the query is cut only when it
alone does not fit. Works on the fast (Rust) tokenizer's backend, so one call tokenises a whole
batch and the special tokens come from the model's own post-processor.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tokenizers import Tokenizer


@dataclass
class EncodedPairs:
    """Token ids of many pairs, unpadded; pad per batch with `pad`."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    truncated: int = 0  # how many pairs lost tokens
    lengths: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.lengths = np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)


class PairTokenizer:
    """Tokenises (query, passage) pairs to at most `max_length` tokens, passage cut first."""

    def __init__(self, hf_tokenizer, max_length: int):
        backend = getattr(hf_tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise TypeError(
                f"PairTokenizer expects a fast (Rust) tokenizer, but got {type(hf_tokenizer).__name__}; "
                "save the model with a tokenizer.json"
            )
        # a private copy: the HF wrapper re-configures its backend's truncation/padding on every call
        self._backend = Tokenizer.from_str(backend.to_str())
        self._backend.no_truncation()
        self._backend.no_padding()
        self._post = self._backend.post_processor
        self.max_length = int(max_length)
        self.n_special = self._post.num_special_tokens_to_add(True) if self._post is not None else 0
        if self.max_length <= self.n_special + 1:
            raise ValueError(f"max_length must exceed the {self.n_special} special tokens of a pair, but got {max_length}")
        self.pad_id = hf_tokenizer.pad_token_id if hf_tokenizer.pad_token_id is not None else 0

    def encode_texts(self, texts: list[str]) -> list:
        return self._backend.encode_batch(texts, add_special_tokens=False)

    def encode(self, queries: list[str], passages: list[str]) -> EncodedPairs:
        q_enc = self.encode_texts(queries)
        p_enc = self.encode_texts(passages)
        return self.combine(q_enc, p_enc)

    def combine(self, q_enc: list, p_enc: list) -> EncodedPairs:
        """Join already-encoded queries and passages into model inputs, truncating passage first."""
        budget = self.max_length - self.n_special
        ids: list[list[int]] = []
        types: list[list[int]] = []
        truncated = 0
        for q, p in zip(q_enc, p_enc):
            nq, np_ = len(q.ids), len(p.ids)
            if nq + np_ > budget:
                truncated += 1
                keep_q = min(nq, budget - 1) if np_ else min(nq, budget)  # the query keeps all it can
                if keep_q < nq:
                    q = _truncated(q, keep_q)
                p = _truncated(p, budget - keep_q)
            enc = self._post.process(q, p, add_special_tokens=True) if self._post is not None else _concat(q, p)
            ids.append(enc.ids)
            types.append(enc.type_ids)
        return EncodedPairs(ids, types, truncated)


def _truncated(encoding, length: int):
    # Encoding.truncate works in place and keeps the removed part as overflow; copy first
    # so a passage shared by several pairs (one passage, many windows) is not altered.
    from tokenizers import Encoding

    copy = Encoding.merge([encoding], growing_offsets=False)
    copy.truncate(max(length, 0))
    return copy


def _concat(q, p):
    from tokenizers import Encoding

    return Encoding.merge([q, p], growing_offsets=True)


def pad_batch(pairs: EncodedPairs, index: np.ndarray, pad_id: int, with_token_types: bool = True) -> dict[str, np.ndarray]:
    """Pad the pairs at `index` to their longest member; returns int64 arrays."""
    width = int(pairs.lengths[index].max()) if len(index) else 0
    input_ids = np.full((len(index), width), pad_id, dtype=np.int64)
    attention = np.zeros((len(index), width), dtype=np.int64)
    token_types = np.zeros((len(index), width), dtype=np.int64)
    for row, i in enumerate(index):
        n = pairs.lengths[i]
        input_ids[row, :n] = pairs.input_ids[i]
        attention[row, :n] = 1
        token_types[row, :n] = pairs.token_type_ids[i]
    out = {"input_ids": input_ids, "attention_mask": attention}
    if with_token_types:
        out["token_type_ids"] = token_types
    return out

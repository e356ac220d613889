"""CrossEncoder: score (query, passage) pairs with a Hugging Face sequence-classification model."""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from crossrank.data.atomic import atomic_dir
from crossrank.data.candidates import Candidates
from crossrank.model.activation import activation_name, apply_activation
from crossrank.model.backends.base import weights_fingerprint, weights_version
from crossrank.model.batching import BatchStats, padded_batches, prefetch
from crossrank.model.loading import (check_weight_files, load_pretrained, quiet_transformers, read_stored_settings, resolve_dtype,
                                     resolve_model_path, stored_activation)
from crossrank.model.ranker import ScoringOptions, candidate_lists_of, score_pairs_of
from crossrank.model.st_metadata import write_st_metadata
from crossrank.model.tokenization import EncodedPairs, PairTokenizer, pad_batch
from crossrank.model.windows import WindowConfig, WindowEncoder, aggregate, resolve_long_passages

logger = logging.getLogger(__name__)


def _resolve_device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def check_pairs(pairs) -> list[tuple[str, str]]:
    """Validate predict's input: a sequence of (query, passage) string pairs."""
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise TypeError(f"predict expects a list of (query, passage) pairs, but got {type(pairs).__name__}")
    out = []
    for i, pair in enumerate(pairs):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise TypeError(f"pairs[{i}] must be a (query, passage) pair, but got {type(pair).__name__} {pair!r:.80}")
        q, p = pair
        if not isinstance(q, str) or not isinstance(p, str):
            bad = 0 if not isinstance(q, str) else 1
            raise TypeError(f"pairs[{i}][{bad}] must be a str, but got {type(pair[bad]).__name__}")
        out.append((q, p))
    return out


class CrossEncoder:
    """A cross-encoder re-ranker.

    Args:
        model_name_or_path: a local folder or a Hugging Face hub id of a sequence-classification
            checkpoint (plain Hugging Face or sentence-transformers CrossEncoder format).
        max_length: tokens per pair; default what the checkpoint stores, else the model's limit.
        device: "cpu", "cuda", ...; default CUDA when present.
        dtype: "fp32" (default), "bf16" or "fp16" weights.
        activation: applied to logits by `predict`: "identity", "sigmoid", "tanh", "softmax";
            default the checkpoint's stored activation, else "identity" (raw logits).
        num_labels: outputs of a new classification head (base models); default the checkpoint's.
        allow_pickle: load `pytorch_model.bin` weights (unpickling runs code; off by default).
        seed: seeds a new head's initialisation so that building from a base model is repeatable.
        backend: "torch", "onnx" (ONNX Runtime on CPU, `pip install crossrank[onnx]`) or "auto"/None.
        precision: "fp32", "bf16", "fp16", "int8" or "auto"/None: the fastest exact path for the
            device (fp32 on CPU, bf16/fp16 autocast on CUDA). `crossrank.model.backends` gives the
            rules; lossy paths (bf16 on CPU, int8) warn unless `crossrank export --check` passed.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike,
        max_length: int | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        activation: str | None = None,
        *,
        num_labels: int | None = None,
        allow_pickle: bool = False,
        revision: str | None = None,
        seed: int = 0,
        backend: str | None = None,
        precision: str | None = None,
    ):
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        self.path = resolve_model_path(model_name_or_path, revision=revision)
        safe = check_weight_files(self.path, allow_pickle)
        stored = read_stored_settings(self.path)
        self.device = _resolve_device(device)
        self.dtype = resolve_dtype(dtype)

        config = AutoConfig.from_pretrained(self.path)
        new_head = not any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))
        if num_labels is not None:
            config.num_labels = num_labels
        elif new_head:
            config.num_labels = 1  # a base model becomes a one-logit re-ranker
        if new_head:
            logger.info("%s has no classification head: initialising a new one (seed=%d)", self.path, seed)
        with torch.random.fork_rng(devices=[]), quiet_transformers():
            torch.manual_seed(seed)  # a new head is initialised the same way every time
            self.model = load_pretrained(
                AutoModelForSequenceClassification, self.path, config=config, dtype=self.dtype, use_safetensors=safe,
                ignore_mismatched_sizes=num_labels is not None,
            )
        self.model.to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self._max_length = int(max_length or stored.max_length or 512)
        self.activation = activation_name(activation) or stored_activation(stored.activation) or "identity"
        self.pair_tokenizer = PairTokenizer(self.tokenizer, self._max_length)
        self._uses_token_types = "token_type_ids" in self.tokenizer.model_input_names
        self._fingerprint: tuple | None = None  # (weights_version, sha256) of the weights last fingerprinted
        self.inference_backend = None
        self.set_backend(backend, precision)

    # ------------------------------------------------------------------ backends
    def set_backend(self, backend: str | None = None, precision: str | None = None):
        """Choose what `predict` scores with (see `crossrank.model.backends`); returns the backend."""
        from crossrank.model.backends import create_backend

        self.inference_backend = create_backend(self, backend, precision)
        self._backend_chosen = backend not in (None, "auto")
        logger.debug("%s scores with %s (%s)", self.path, self.inference_backend.describe(), self.inference_backend.reason)
        return self.inference_backend

    @contextlib.contextmanager
    def using_backend(self, backend: str | None = None, precision: str | None = None):
        """Score with (`backend`, `precision`) inside the `with` block, which gets the backend; the
        choice made before comes back on exit, however the block ends."""
        before, chosen = self.inference_backend, self._backend_chosen
        try:
            yield self.set_backend(backend, precision)
        finally:
            self.inference_backend, self._backend_chosen = before, chosen

    @property
    def backend(self) -> str:
        """The backend `predict` uses: "torch" or "onnx"."""
        return self.inference_backend.name

    @property
    def precision(self) -> str:
        """The precision `predict` computes in: "fp32", "bf16", "fp16" or "int8"."""
        return self.inference_backend.precision

    def _ready_backend(self):
        b = self.inference_backend
        if b.is_current(self.model):
            return b
        if hasattr(b, "refresh"):  # a torch int8 copy: quantise the new weights
            b.refresh()
            return b
        # chosen by "auto" (training a model that has an export): expected, so said quietly
        log = logger.warning if self._backend_chosen else logger.info
        log("the weights changed since the %s session was made from them; scoring with torch %s from now on", b.describe(), b.precision)
        chosen = self._backend_chosen
        self.set_backend("torch", b.precision)
        self._backend_chosen = chosen
        return self.inference_backend

    # ------------------------------------------------------------------ properties
    @property
    def uses_token_types(self) -> bool:
        """Whether the model takes token type ids (segment ids), as its tokenizer says."""
        return self._uses_token_types

    def weights_fingerprint(self) -> str:
        """The sha256 of the model's weights (`crossrank.model.backends.base.weights_fingerprint`),
        computed again only after they change in place (training, load_state_dict)."""
        version = weights_version(self.model)
        if self._fingerprint is None or self._fingerprint[0] != version:
            self._fingerprint = (version, weights_fingerprint(self.model))
        return self._fingerprint[1]

    def identity(self) -> str:
        """What decides this model's scores: its weights, max_length, activation, backend and precision
        (a resumed run checks it)."""
        variant = self.inference_backend.variant
        return f"{self.weights_fingerprint()}|{self.max_length}|{self.activation}|{self.backend}|{self.precision}" + (
            f"|{variant}" if variant else "")

    @property
    def max_length(self) -> int:
        """Tokens per pair; setting it re-configures the pair tokenizer."""
        return self._max_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        self.pair_tokenizer = PairTokenizer(self.tokenizer, int(value))
        self._max_length = int(value)

    @property
    def num_labels(self) -> int:
        return int(self.model.config.num_labels)

    def __repr__(self) -> str:
        return (
            f"CrossEncoder({str(self.path)!r}, max_length={self.max_length}, device={self.device}, "
            f"dtype={str(self.dtype).removeprefix('torch.')}, activation={self.activation!r}, num_labels={self.num_labels}, "
            f"backend={self.backend!r}, precision={self.precision!r})"
        )

    # ------------------------------------------------------------------ scoring
    def tokenize(self, queries: list[str], passages: list[str]) -> EncodedPairs:
        return self.pair_tokenizer.encode(queries, passages)

    def _batch_to_tensors(self, encoded: EncodedPairs, index: np.ndarray) -> dict[str, torch.Tensor]:
        arrays = pad_batch(encoded, index, self.pair_tokenizer.pad_id, with_token_types=self._uses_token_types)
        return {k: torch.from_numpy(v).to(self.device, non_blocking=True) for k, v in arrays.items()}

    def features(self, queries: list[str], passages: list[str]) -> dict[str, torch.Tensor]:
        """Model inputs for pairs, padded to their longest member, on the model's device."""
        encoded = self.tokenize(queries, passages)
        return self._batch_to_tensors(encoded, np.arange(len(encoded)))

    def forward_pairs(self, queries: list[str], passages: list[str], length_groups: bool = False,
                      overhead_tokens: int = 32, module: torch.nn.Module | None = None) -> torch.Tensor:
        """Logits with autograd for training: shape (n,) for one label, else (n, labels).

        With `length_groups`, the pairs run in length-sorted sub-batches, each padded to its own
        longest pair (`crossrank.model.batching.length_groups`), and the logits come back in input
        order: the same values as one padded batch, with fewer padded tokens to compute. `module`
        runs the model (default `self.model`; a trainer passes its wrapped copy, e.g. under DDP).
        """
        module = self.model if module is None else module
        encoded = self.tokenize(queries, passages)
        if not length_groups or len(encoded) < 2:
            logits = module(**self._batch_to_tensors(encoded, np.arange(len(encoded)))).logits.float()
        else:
            from crossrank.model.batching import length_groups as split

            groups = split(encoded.lengths, overhead_tokens)
            parts = [module(**self._batch_to_tensors(encoded, g)).logits.float() for g in groups]
            position = torch.from_numpy(np.argsort(np.concatenate(groups), kind="stable")).to(self.device)
            logits = torch.cat(parts)[position]
        return logits.squeeze(-1) if self.num_labels == 1 else logits

    def predict(
        self,
        pairs: Sequence[tuple[str, str]],
        batch_size: int | None = None,
        activation: str | None = None,
        show_progress_bar: bool | None = None,
        max_tokens_per_batch: int | None = None,
        *,
        long_passages: str = "truncate",
        window: WindowConfig | None = None,
    ) -> np.ndarray:
        """One float32 score per (query, passage) pair, in input order ((n, labels) for several labels).

        Pairs are tokenised (passage truncated before query) on a background thread while the
        model runs, sorted by length and scored in batches of at most `max_tokens_per_batch`
        padded tokens (default: the backend's, see `crossrank.model.batching.DEFAULT_MAX_TOKENS`)
        and at most `batch_size` pairs (default: no limit but the token budget), each padded
        only to its own longest pair.

        `long_passages="window"` scores a passage longer than what fits beside its query as
        overlapping windows and aggregates their logits (`window`, a `WindowConfig`: size, stride,
        max/first/mean; default what fits, half-window stride, max); windows are batched like
        pairs. See `crossrank.model.windows`. Needs a one-output model.
        """
        pairs = check_pairs(pairs)
        act = activation_name(activation) or self.activation
        windows = resolve_long_passages(long_passages, window)
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, but got {batch_size}")
        if max_tokens_per_batch is not None and max_tokens_per_batch < 1:
            raise ValueError(f"max_tokens_per_batch must be >= 1, but got {max_tokens_per_batch}")
        if windows is not None and self.num_labels != 1:
            raise ValueError(f"long_passages='window' expects a model with one output, but this one has {self.num_labels}")
        if not pairs:
            shape = (0,) if self.num_labels == 1 else (0, self.num_labels)
            return np.zeros(shape, dtype=np.float32)
        stats = BatchStats()
        encoder = WindowEncoder(self.pair_tokenizer, windows) if windows is not None else None
        out = self._score_rows(pairs, encoder, batch_size, max_tokens_per_batch, show_progress_bar, stats)
        if stats.truncated and encoder is None:
            logger.info("%d of %d pairs were longer than max_length=%d and lost passage tokens", stats.truncated, len(pairs), self.max_length)
        elif stats.truncated:
            logger.info("%d of %d pairs have a query that alone fills max_length=%d: scored truncated, without windows",
                        stats.truncated, len(pairs), self.max_length)
        if encoder is not None:
            out = aggregate(out[:, 0], encoder.owner, len(pairs), windows.aggregate)[:, None]
            if encoder.split:
                logger.info("%d of %d passages did not fit beside their query in max_length=%d and were split into windows "
                            "(%d windows scored for %d pairs, aggregate %s)",
                            encoder.split, len(pairs), self.max_length, stats.rows, len(pairs), windows.aggregate)
        out = apply_activation(torch.from_numpy(out), act).numpy()
        return out[:, 0].copy() if self.num_labels == 1 else out

    def _score_rows(self, pairs, encode, batch_size, max_tokens_per_batch, show_progress_bar, stats: BatchStats) -> np.ndarray:
        """Logits of every encoded row (a pair, or a window with `encode`), in row order: (rows, labels)."""
        backend = self._ready_backend()
        budget = max_tokens_per_batch or backend.default_max_tokens
        batches = padded_batches(self.pair_tokenizer, pairs, batch_size, budget, with_token_types=self._uses_token_types,
                                 stats=stats, encode=encode)
        parts = []
        total, unit = (len(pairs), "pair") if encode is None else (None, "window")
        with backend.session(), tqdm(total=total, desc="Scoring", unit=unit, disable=_disable(show_progress_bar)) as bar:
            for index, arrays in prefetch(batches):
                parts.append((index, backend.run(arrays)))
                bar.update(len(index))
        out = np.empty((stats.rows, self.num_labels), dtype=np.float32)
        for index, logits in parts:
            out[index] = logits
        return out

    def rank(
        self,
        query: str,
        passages: Sequence[str],
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        *,
        activation: str | None = None,
        long_passages: str = "truncate",
        window: WindowConfig | None = None,
    ) -> list[dict]:
        """Passages best first as dicts {corpus_id, score[, text]}; equal scores keep input order.

        `long_passages` and `window` as in `predict`.
        """
        if not isinstance(query, str):
            raise TypeError(f"rank expects query to be a str, but got {type(query).__name__}")
        if self.num_labels != 1:
            raise ValueError(f"rank expects a model with one output, but this one has {self.num_labels}")
        scores = self.predict([(query, p) for p in passages], batch_size=batch_size, activation=activation,
                              show_progress_bar=show_progress_bar, long_passages=long_passages, window=window)
        order = np.argsort(-scores, kind="stable")
        if top_k is not None:
            order = order[:top_k]
        results = []
        for i in order:
            item = {"corpus_id": int(i), "score": float(scores[i])}
            if return_documents:
                item["text"] = passages[i]
            results.append(item)
        return results

    def rerank_many(
        self,
        queries: Sequence[str],
        candidate_lists: Sequence[Sequence[str]],
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        activation: str | None = None,
        *,
        long_passages: str = "truncate",
        window: WindowConfig | None = None,
    ) -> list[np.ndarray]:
        """Scores of every query's candidates, computed in one length-sorted pass over all pairs
        (`long_passages` and `window` as in `predict`); `score_candidates` on texts alone."""
        options = ScoringOptions(batch_size=batch_size, activation=activation, show_progress_bar=show_progress_bar,
                                 long_passages=long_passages, window=window)
        return self.score_candidates(candidate_lists_of(queries, candidate_lists), options)

    def score_candidates(self, candidates: Sequence[Candidates], options: ScoringOptions | None = None) -> list[np.ndarray]:
        """One score array per query of `candidates` (the `crossrank.model.ranker.Ranker` protocol)."""
        return score_pairs_of(self, candidates, options)

    # ------------------------------------------------------------------ saving
    def save(self, path: str | os.PathLike) -> Path:
        """Write safetensors weights, config and tokenizer in a layout that both crossrank and
        sentence-transformers' CrossEncoder read (max length and activation included).

        Files are written to a temporary folder first and moved in place, so an interrupted
        save never leaves a half-written model behind.
        """
        target = Path(path)
        with atomic_dir(target, merge=True, label="save") as tmp:  # files moved into `target` on success
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.model_max_length = self.max_length
            self.tokenizer.save_pretrained(tmp)
            write_st_metadata(tmp, self.activation, self.max_length)
        self._carry_conversion(target)
        return target

    def _carry_conversion(self, target: Path) -> None:
        """The OpenVINO conversion of these weights goes with a saved copy (backend="auto" uses it there)."""
        from crossrank.model.backends.openvino_backend import XML, copy_conversion, openvino_dir
        from crossrank.model.backends.selection import input_names

        source = openvino_dir(self.path)
        if (source / XML).exists():  # before hashing the weights: most models have no conversion
            copy_conversion(source, target / "openvino", self.weights_fingerprint(), input_names(self))

    save_pretrained = save


def _disable(show: bool | None) -> bool | None:
    # None lets tqdm decide: shown on a terminal, hidden in logs and CI
    return None if show is None else not show

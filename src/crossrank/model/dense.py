"""Bi-encoder (dense) scoring: a sentence-transformers embedding model, reproduced with transformers.

The default model is all-MiniLM-L6-v2 (`crossrank.model.minilm_path()`): BERT, mean pooling over
the attention mask, L2 normalisation -- so sentence-transformers is not needed. Texts are embedded
in length-sorted batches under `torch.inference_mode`. Used for dense negative mining and as a
second scorer fused with the cross-encoder.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from crossrank.model.batching import DEFAULT_MAX_TOKENS, length_sorted_batches
from crossrank.model.loading import check_weight_files, read_stored_settings, resolve_model_path
from crossrank.model.vector_cache import VectorCache

logger = logging.getLogger(__name__)

#: backend="auto" runs the bi-encoder on OpenVINO only where it measured at least this much faster than torch
OPENVINO_MIN_GAIN = 1.10

_POOLING_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}


def _pooling_mode(path: Path) -> str:
    """Pooling named by a sentence-transformers folder (`*_Pooling/config.json`); mean when absent."""
    modules_file = path / "modules.json"
    folders = []
    if modules_file.exists():
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        folders = [path / m["path"] for m in modules if str(m.get("type", "")).endswith("Pooling")]
    for folder in folders:
        config_file = folder / "config.json"
        if not config_file.exists():
            continue
        config = json.loads(config_file.read_text(encoding="utf-8"))
        chosen = [mode for key, mode in _POOLING_MODES.items() if config.get(key)]
        others = [k for k, v in config.items() if k.startswith("pooling_mode_") and v and k not in _POOLING_MODES]
        if others or len(chosen) != 1:
            raise ValueError(f"{config_file}: crossrank's dense encoder supports mean or CLS pooling alone, "
                             f"but this model asks for {sorted(k for k, v in config.items() if k.startswith('pooling_mode_') and v)}")
        return chosen[0]
    return "mean"


class DenseEncoder:
    """Embeds texts with a sentence-transformers bi-encoder folder; rows are L2-normalised float32.

    Args:
        model_name_or_path: the model folder (or hub id); default all-MiniLM-L6-v2 (`minilm_path()`).
        max_length: tokens per text; default the model's `max_seq_length` (256 for all-MiniLM-L6-v2).
        device: default CUDA when present.
        batch_size: texts per forward pass, at most.
        max_tokens_per_batch: padded tokens per forward pass, at most (default: 2,048 on CPU, as the
            cross-encoder; 32,768 on CUDA). It bounds memory on long texts; on a 2-core AMD host the
            speed was the same within noise as 64 texts per batch (bf16: 2,000 MS MARCO passages
            122-128 vs 113-130 texts/s, 500 SciFact abstracts 39-42 vs 40).
        precision: "fp32" (default, exact), "bf16": the forward pass under bf16 autocast, pooling
            and normalisation in fp32 -- faster only where the host runs bf16 natively -- or "auto":
            bf16 where a forward pass of this model measures faster than fp32 on this host
            (`crossrank.model.backends.precision.choose_precision`, noise-guarded and cached), else
            fp32. `precision_reason` says why. On an AMD host with AVX512-BF16, bf16 embedded
            2.1-2.3x as many texts per second with every cosine to the fp32 vector >= 0.9999.
            bf16 on CPU runs a copy of the model cast to bf16 once where that measures faster than
            autocast (`crossrank.model.backends.bf16_weights`; `bf16_weights` says which).
        bf16_weights: with bf16 on CPU, True: a copy cast to bf16 once; False: autocast; None (default):
            whichever measures faster on this host.
        backend: "torch" (default), "openvino" (a conversion made in memory, `crossrank[openvino]`; f32,
            or bf16 where the CPU has it natively) or "auto": OpenVINO where installed and its forward
            pass measures at least `OPENVINO_MIN_GAIN` x torch's at this precision on this host
            (`crossrank.model.backends.path_timing`, noise-guarded and cached). `precision_reason` says which.
        cache: a `VectorCache` (optionally backed by a file): each distinct text is embedded once for
            this set-up, across calls and restarts.
    """

    def __init__(self, model_name_or_path: str | os.PathLike | None = None, max_length: int | None = None,
                 device: str | torch.device | None = None, batch_size: int = 64, precision: str = "fp32", *,
                 cache: VectorCache | None = None, max_tokens_per_batch: int | None = None, bf16_weights: bool | None = None,
                 backend: str = "torch"):
        from transformers import AutoModel, AutoTokenizer

        if model_name_or_path is None:
            from crossrank.model import minilm_path

            model_name_or_path = minilm_path()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, but got {batch_size}")
        if precision not in ("fp32", "bf16", "auto"):
            raise ValueError(f"DenseEncoder expects precision 'fp32', 'bf16' or 'auto', but got {precision!r}")
        if backend not in ("torch", "openvino", "auto"):
            raise ValueError(f"DenseEncoder expects backend 'torch', 'openvino' or 'auto', but got {backend!r}")
        self.path = resolve_model_path(model_name_or_path)
        safe = check_weight_files(self.path, allow_pickle=False)
        self.pooling = _pooling_mode(self.path)
        stored = read_stored_settings(self.path)
        self.max_length = int(max_length or stored.max_length or 512)
        if self.max_length < 2:
            raise ValueError(f"max_length must be >= 2, but got {self.max_length}")
        self.device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        if max_tokens_per_batch is not None and max_tokens_per_batch < 1:
            raise ValueError(f"max_tokens_per_batch must be >= 1, but got {max_tokens_per_batch}")
        self.max_tokens_per_batch = max_tokens_per_batch or DEFAULT_MAX_TOKENS["cuda" if self.device.type == "cuda" else "cpu"]
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.model = AutoModel.from_pretrained(self.path, use_safetensors=safe).to(self.device).eval()
        self.precision, self.precision_reason = self._resolve_precision(precision)
        self.bf16_weights, self._bf16_copy = False, None
        if self.precision == "bf16" and self.device.type == "cpu" and backend != "openvino":  # a torch way: not timed for OpenVINO
            from crossrank.model.backends.bf16_weights import cast_bf16, choose_bf16_variant

            if bf16_weights is None:
                variant = choose_bf16_variant(self.model)
                bf16_weights = variant.weights
                self.precision_reason += f"; {variant.reason}"
            if bf16_weights:
                self.bf16_weights, self._bf16_copy = True, cast_bf16(self.model)
        self.backend, self._openvino = "torch", None
        if backend == "openvino" and self.device.type != "cpu":
            raise ValueError(f"the OpenVINO backend runs on CPU here, but the encoder is on {self.device}")
        if backend != "torch" and self.device.type == "cpu":
            self._openvino, why = self._resolve_backend(backend)
            self.backend = "torch" if self._openvino is None else "openvino"
            self.precision_reason += why
            if self._openvino is not None:  # torch's bf16 copy served the timing only: OpenVINO runs from now on
                self.bf16_weights, self._bf16_copy = False, None
        self.cache = cache
        if cache is not None:
            cache.bind(self.identity())

    def _resolve_precision(self, precision: str) -> tuple[str, str]:
        if precision != "auto":
            return precision, "set by the caller"
        from crossrank.model.backends.precision import choose_precision

        width = min(self.max_length, 128)
        choice = choose_precision(self.model, rows=self.batch_size, width=width, mode="inference", allowed=("fp32", "bf16"))
        logger.info("bi-encoder precision %s: %s", choice.precision, choice.reason)
        return choice.precision, f"measured on {self.batch_size} x {width}-token forward passes: {choice.reason}"

    def _resolve_backend(self, backend: str):
        """(the OpenVINO encoder or None for torch, why) for backend "openvino" or "auto"."""
        from crossrank.model.backends.openvino_backend import OpenVINOEncoder, openvino_available, openvino_bf16_supported
        from crossrank.model.backends.path_timing import ROWS, WIDTH, time_paths
        from crossrank.model.backends.precision import timing_batch

        names = tuple(n for n in ("input_ids", "attention_mask", "token_type_ids") if n in self.tokenizer.model_input_names)
        if backend == "openvino":
            return OpenVINOEncoder(self.model, names, self.precision), "; OpenVINO (requested)"
        if not openvino_available():
            return None, "; torch (openvino not installed: `pip install crossrank[openvino]`)"
        if self.precision == "bf16" and not openvino_bf16_supported():
            return None, "; torch (this CPU has no native bf16 for OpenVINO)"
        built = {}

        def make_runs():
            batch = {k: v for k, v in timing_batch(self.model, ROWS, WIDTH).items() if k in names}
            arrays = {k: v.numpy() for k, v in batch.items()}
            built["openvino"] = OpenVINOEncoder(self.model, names, self.precision)
            return {"torch": lambda: self._torch_hidden(batch), "openvino": lambda: built["openvino"](arrays)}

        timing = time_paths(self.model, f"dense-openvino-{self.precision}{'-weights' * self.bf16_weights}", make_runs)
        gain = timing.ratio("torch", "openvino")
        if gain < OPENVINO_MIN_GAIN:
            return None, f"; torch (OpenVINO measured {gain:.2f}x torch: {timing.describe()})"
        encoder = built.get("openvino") or OpenVINOEncoder(self.model, names, self.precision)
        return encoder, f"; OpenVINO (measured {gain:.2f}x torch: {timing.describe()})"

    def _torch_hidden(self, features: dict) -> torch.Tensor:
        """The last hidden states of `features` (tensors on the device) in float32, by torch at this precision."""
        model = self._bf16_copy if self.bf16_weights else self.model
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                    enabled=self.precision == "bf16" and not self.bf16_weights):
            return model(**features).last_hidden_state.float()

    def identity(self) -> str:
        """What decides a vector: the weights, pooling, max_length, precision and backend (a cache is bound to it)."""
        from crossrank.model.backends.base import weights_fingerprint

        way = ("-weights" if self.bf16_weights else "") + ("|openvino" if self.backend == "openvino" else "")
        return f"{weights_fingerprint(self.model)}|{self.pooling}|{self.max_length}|{self.precision}{way}"

    def __repr__(self) -> str:
        return (f"DenseEncoder({str(self.path)!r}, max_length={self.max_length}, pooling={self.pooling!r}, device={self.device}, "
                f"precision={self.precision!r})")

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool | None = None,
               desc: str = "Embedding") -> np.ndarray:
        """`(len(texts), dim)` float32 unit vectors, in input order.

        Texts are tokenised once and batched by token length, longest first (`length_sorted_batches`):
        each batch is padded only to its own longest member and holds at most `batch_size` texts
        and `max_tokens_per_batch` padded tokens. Leading/trailing whitespace is stripped as
        sentence-transformers does.
        """
        batch_size = batch_size or self.batch_size
        texts = [str(t).strip() for t in texts]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        lengths = np.fromiter((len(ids) for ids in encoded["input_ids"]), dtype=np.int64, count=len(texts))
        disable = None if show_progress is None else not show_progress
        with torch.inference_mode(), tqdm(total=len(texts), desc=desc, unit="text", disable=disable) as bar:
            for index in length_sorted_batches(lengths, batch_size, self.max_tokens_per_batch):
                features = self.tokenizer.pad({k: [v[i] for i in index] for k, v in encoded.items()}, return_tensors="pt")
                if self._openvino is not None:
                    hidden = torch.from_numpy(self._openvino({k: v.numpy() for k, v in features.items()}))
                else:
                    hidden = self._torch_hidden({k: v.to(self.device) for k, v in features.items()})
                if self.pooling == "cls":
                    pooled = hidden[:, 0]
                else:
                    mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[index] = torch.nn.functional.normalize(pooled, p=2, dim=1).cpu().numpy()
                bar.update(len(index))
        return out

    def _encode_unique(self, texts: Sequence[str], show_progress: bool | None, desc: str) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of the distinct texts (each embedded once) and, for each input text, its row among them."""
        unique = list(dict.fromkeys(texts))
        row = {t: i for i, t in enumerate(unique)}
        rows = np.fromiter((row[t] for t in texts), dtype=np.int64, count=len(texts))
        if self.cache is None:
            return self.encode(unique, show_progress=show_progress, desc=desc), rows
        todo = [unique[i] for i in self.cache.missing(unique)]
        if todo:
            self.cache.put(todo, self.encode(todo, show_progress=show_progress, desc=desc))
            self.cache.save()
        return self.cache.get(unique, self.dim), rows

    def encode_lists(self, queries: Sequence[str], candidate_lists: Sequence[Sequence[str]],
                     show_progress: bool | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query, its unit vector `(dim,)` and its candidates' `(n, dim)`; each distinct text embedded once."""
        if len(queries) != len(candidate_lists):
            raise ValueError(f"encode_lists expects one candidate list per query, but got {len(queries)} queries "
                             f"and {len(candidate_lists)} lists")
        q_vectors, qi = self._encode_unique(queries, show_progress, "Embedding queries")
        p_vectors, pi = self._encode_unique([p for docs in candidate_lists for p in docs], show_progress, "Embedding passages")
        ends = np.cumsum([len(docs) for docs in candidate_lists], dtype=np.int64)
        return [(q_vectors[qi[i]], p_vectors[pi[end - len(docs) : end]]) for i, (end, docs) in enumerate(zip(ends, candidate_lists))]

    def score_pairs(self, pairs: Sequence[tuple[str, str]], show_progress: bool | None = None) -> np.ndarray:
        """Cosine similarity of each (query, passage) pair, float32; each distinct text is embedded once."""
        q_vectors, qi = self._encode_unique([q for q, _ in pairs], show_progress, "Embedding queries")
        p_vectors, pi = self._encode_unique([p for _, p in pairs], show_progress, "Embedding passages")
        return np.einsum("ij,ij->i", q_vectors[qi], p_vectors[pi]).astype(np.float32)

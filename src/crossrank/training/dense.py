"""Dense first stage for negative mining: a sentence-transformers bi-encoder and exact search.

The default model is all-MiniLM-L6-v2 (`crossrank.model.minilm_path()`): BERT, mean pooling over
the attention mask, L2 normalisation -- reproduced here with transformers' AutoModel, so
sentence-transformers is not needed. Texts are embedded in length-sorted batches under
`torch.inference_mode`; the search is exact (numpy matrix products, top-k by `argpartition`), or
faiss' exact inner-product index when asked for and installed. Scores are cosine similarities.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from crossrank.model.loading import check_weight_files, read_stored_settings, resolve_model_path

logger = logging.getLogger(__name__)

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
        batch_size: texts per forward pass.
    """

    def __init__(self, model_name_or_path: str | os.PathLike | None = None, max_length: int | None = None,
                 device: str | torch.device | None = None, batch_size: int = 64):
        from transformers import AutoModel, AutoTokenizer

        if model_name_or_path is None:
            from crossrank.model import minilm_path

            model_name_or_path = minilm_path()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, but got {batch_size}")
        self.path = resolve_model_path(model_name_or_path)
        safe = check_weight_files(self.path, allow_pickle=False)
        self.pooling = _pooling_mode(self.path)
        stored = read_stored_settings(self.path)
        self.max_length = int(max_length or stored.max_length or 512)
        if self.max_length < 2:
            raise ValueError(f"max_length must be >= 2, but got {self.max_length}")
        self.device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.model = AutoModel.from_pretrained(self.path, use_safetensors=safe).to(self.device).eval()

    def __repr__(self) -> str:
        return f"DenseEncoder({str(self.path)!r}, max_length={self.max_length}, pooling={self.pooling!r}, device={self.device})"

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool | None = None,
               desc: str = "Embedding") -> np.ndarray:
        """`(len(texts), dim)` float32 unit vectors, in input order.

        Texts are sorted by character length (longest first) so that each batch is padded only
        to its own longest member; leading/trailing whitespace is stripped as sentence-transformers does.
        """
        batch_size = batch_size or self.batch_size
        texts = [str(t).strip() for t in texts]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        order = np.argsort(-np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts)), kind="stable")
        disable = None if show_progress is None else not show_progress
        with torch.inference_mode(), tqdm(total=len(texts), desc=desc, unit="text", disable=disable) as bar:
            for start in range(0, len(texts), batch_size):
                index = order[start : start + batch_size]
                features = self.tokenizer([texts[i] for i in index], padding=True, truncation=True,
                                          max_length=self.max_length, return_tensors="pt")
                features = {k: v.to(self.device) for k, v in features.items()}
                hidden = self.model(**features).last_hidden_state.float()
                if self.pooling == "cls":
                    pooled = hidden[:, 0]
                else:
                    mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[index] = torch.nn.functional.normalize(pooled, p=2, dim=1).cpu().numpy()
                bar.update(len(index))
        return out


def exact_search(query_embeddings: np.ndarray, doc_embeddings: np.ndarray, k: int, chunk_size: int = 1024,
                 backend: str = "numpy") -> tuple[np.ndarray, np.ndarray]:
    """Top-k documents per query by inner product: `(scores, indices)`, each `(n_queries, min(k, n_docs))`,
    best first (equal scores: lower index first).

    `backend="numpy"`: queries in chunks of `chunk_size`, one matrix product each, top-k by
    `argpartition`. `backend="faiss"`: faiss' exact `IndexFlatIP` (only when faiss is installed).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, but got {k}")
    q = np.ascontiguousarray(query_embeddings, dtype=np.float32)
    d = np.ascontiguousarray(doc_embeddings, dtype=np.float32)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise ValueError(f"exact_search expects 2-d embeddings of one width, but got {q.shape} and {d.shape}")
    k = min(k, len(d))
    if backend == "faiss":
        try:
            import faiss
        except ImportError as exc:
            raise ImportError("backend='faiss' needs `pip install faiss-cpu` (or use backend='numpy')") from exc
        index = faiss.IndexFlatIP(d.shape[1])
        index.add(d)
        scores, indices = index.search(q, k)
        return scores, indices.astype(np.int64)
    if backend != "numpy":
        raise ValueError(f"backend must be 'numpy' or 'faiss', but got {backend!r}")
    scores = np.empty((len(q), k), dtype=np.float32)
    indices = np.empty((len(q), k), dtype=np.int64)
    if k == 0:
        return scores, indices
    for start in range(0, len(q), chunk_size):
        sims = q[start : start + chunk_size] @ d.T
        if k < sims.shape[1]:
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(sims.shape[1]), sims.shape).copy()
        top = np.take_along_axis(sims, part, axis=1)
        order = np.lexsort((part, -top), axis=-1)
        indices[start : start + len(sims)] = np.take_along_axis(part, order, axis=1)
        scores[start : start + len(sims)] = np.take_along_axis(top, order, axis=1)
    return scores, indices


def dense_candidates(
    queries: Mapping[str, str],
    collection,
    k: int = 100,
    *,
    qrels: Mapping[str, Mapping[str, int]] | None = None,
    doc_ids: Iterable[str] | None = None,
    encoder: DenseEncoder | None = None,
    model: str | os.PathLike | None = None,
    max_length: int | None = None,
    batch_size: int = 64,
    show_progress: bool | None = None,
    backend: str = "numpy",
) -> dict[str, dict[str, float]]:
    """`{qid: {pid: cosine}}`: each query's `k` nearest passages by the bi-encoder, as a run for `mine_negatives`.

    `collection`: a `Collection` (or any `pid -> text` mapping; with `doc_ids` when it cannot be
    iterated); `doc_ids` restricts the searched corpus. With `qrels`, each query also gets the
    cosine of every judged-relevant passage of the corpus (whatever its rank), and its `k`
    candidates are counted without them -- so after the positives are set aside there are still
    `k`, and margins to the positive can be checked. `encoder` (a `DenseEncoder`) or `model`,
    `max_length`, `batch_size` choose the bi-encoder (default all-MiniLM-L6-v2).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, but got {k}")
    ids = list(collection if doc_ids is None else dict.fromkeys(doc_ids))
    missing = [d for d in ids if d not in collection]
    if missing:
        raise ValueError(f"{len(missing)} doc ids have no passage in the collection, e.g. {missing[0]!r}")
    qids = list(queries)
    if not ids or not qids:
        return {qid: {} for qid in qids}
    if encoder is None:
        encoder = DenseEncoder(model, max_length=max_length, batch_size=batch_size)
    logger.info("embedding %d passages and %d queries with %r", len(ids), len(qids), encoder)
    doc_emb = encoder.encode([collection[d] for d in ids], show_progress=show_progress, desc="Embedding passages")
    query_emb = encoder.encode([queries[q] for q in qids], show_progress=show_progress, desc="Embedding queries")

    position = {d: i for i, d in enumerate(ids)}
    positives = {}
    for qid in qids:
        judged = (qrels or {}).get(qid, {})
        positives[qid] = [position[d] for d, rel in judged.items() if rel > 0 and d in position]
    extra = max((len(p) for p in positives.values()), default=0)
    scores, indices = exact_search(query_emb, doc_emb, k + extra, backend=backend)

    result: dict[str, dict[str, float]] = {}
    for row, qid in enumerate(qids):
        pos = set(positives[qid])
        found: dict[str, float] = {}
        kept = 0
        for score, index in zip(scores[row].tolist(), indices[row].tolist()):
            if index in pos:
                continue
            if kept == k:
                break
            found[ids[index]] = float(score)
            kept += 1
        for index in sorted(pos):
            found[ids[index]] = float(query_emb[row] @ doc_emb[index])
        result[qid] = found
    return result

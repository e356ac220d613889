"""Score fusion: the cross-encoder's scores combined with a bi-encoder's cosine and the first stage.

Each query's candidate scores from every scorer are z-normalised (mean 0, standard deviation 1
within the list) and summed with fixed weights. Different scorers make different mistakes, so a
weighted sum of normalised scores ranks better than any one of them when each is good but
imperfect -- the usual case for a cross-encoder trained on little data.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

FUSION_FILE = "fusion.json"


@dataclass
class FusionWeights:
    cross_encoder: float = 1.0
    dense: float = 0.0
    first_stage: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not np.isfinite(value):
                raise ValueError(f"FusionWeights expects finite weights, but got {name}={value}")


def znorm(scores: np.ndarray) -> np.ndarray:
    """Scores shifted to mean 0 and scaled to standard deviation 1 (constant lists become zeros)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    std = scores.std()
    return (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)


def fuse(weights: FusionWeights, cross_encoder: np.ndarray, dense: np.ndarray | None = None,
         first_stage: np.ndarray | None = None) -> np.ndarray:
    """Weighted sum of one query's z-normalised scores; a scorer with weight 0 may be None."""
    total = weights.cross_encoder * znorm(cross_encoder)
    for name, scores in (("dense", dense), ("first_stage", first_stage)):
        w = getattr(weights, name)
        if w == 0:
            continue
        if scores is None:
            raise ValueError(f"fusion weight {name}={w} needs {name} scores, but none were given")
        total = total + w * znorm(scores)
    return total.astype(np.float32)


class FusedReranker:
    """A CrossEncoder whose scores are fused with a DenseEncoder's cosine and the first-stage scores.

    Use it wherever a CrossEncoder reranks candidate lists (`rerank_many`, the pipeline's
    `rerank_run`); `predict` on single pairs stays the cross-encoder's own.
    """

    uses_first_stage = True

    def __init__(self, cross_encoder, dense=None, weights: FusionWeights | None = None):
        self.cross_encoder = cross_encoder
        self.dense = dense
        self.weights = weights or FusionWeights()
        if self.weights.dense and dense is None:
            raise ValueError("FusedReranker with a dense weight needs a DenseEncoder")

    def predict(self, *args, **kwargs):
        return self.cross_encoder.predict(*args, **kwargs)

    def dense_scores(self, queries: Sequence[str], candidate_lists: Sequence[Sequence[str]],
                     show_progress: bool | None = False) -> list[np.ndarray]:
        """The bi-encoder's cosine of each query with each of its candidates (each text embedded once)."""
        scores = self.dense.score_pairs([(q, p) for q, docs in zip(queries, candidate_lists) for p in docs], show_progress=show_progress)
        ends = np.cumsum([len(docs) for docs in candidate_lists])
        return [scores[end - len(docs) : end] for end, docs in zip(ends, candidate_lists)]

    def rerank_many(self, queries, candidate_lists, first_stage=None, batch_size: int | None = None, show_progress_bar=None,
                    activation=None, *, long_passages: str = "truncate", window=None) -> list[np.ndarray]:
        """Fused scores per query; `long_passages` and `window` go to the cross-encoder (see its `predict`)."""
        ce = self.cross_encoder.rerank_many(queries, candidate_lists, batch_size=batch_size, show_progress_bar=show_progress_bar,
                                            long_passages=long_passages, window=window)
        dense = self.dense_scores(queries, candidate_lists) if self.weights.dense else [None] * len(queries)
        if self.weights.first_stage:
            if first_stage is None or any(s is None for fs in first_stage for s in fs):
                raise ValueError("fusion with a first-stage weight needs first-stage scores for every candidate")
            stage = [np.asarray(fs, dtype=np.float64) for fs in first_stage]
        else:
            stage = [None] * len(queries)
        return [fuse(self.weights, c, d, s) for c, d, s in zip(ce, dense, stage)]

    def save_weights(self, folder: str | os.PathLike) -> Path:
        """Write the weights (and the dense model's location) beside a saved cross-encoder."""
        path = Path(folder) / FUSION_FILE
        content = {"weights": asdict(self.weights), "dense_model": str(self.dense.path) if self.dense is not None else None}
        tmp = path.with_name(f".{FUSION_FILE}.tmp")
        tmp.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike, **cross_encoder_kwargs) -> "FusedReranker":
        """A cross-encoder folder with a fusion.json beside it (as written by `save_weights`)."""
        from crossrank.model.cross_encoder import CrossEncoder
        from crossrank.model.dense import DenseEncoder

        folder = Path(folder)
        spec_file = folder / FUSION_FILE
        if not spec_file.exists():
            raise FileNotFoundError(f"{spec_file}: no fusion weights beside this model")
        spec = json.loads(spec_file.read_text(encoding="utf-8"))
        weights = FusionWeights(**spec["weights"])
        dense = DenseEncoder(spec["dense_model"]) if weights.dense and spec.get("dense_model") else None
        return cls(CrossEncoder(folder, **cross_encoder_kwargs), dense, weights)

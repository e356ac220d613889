"""Pointwise binary cross-entropy on (query, passage) logits."""
from __future__ import annotations

from typing import Any

from torch import Tensor

from . import functional as F
from .base import RankingLoss

__all__ = ["BCELoss"]


class BCELoss(RankingLoss):
    """Binary cross-entropy on logits against 0/1 (or soft) labels, mean over all real pairs.

    Counterpart of sentence-transformers' cross-encoder ``BinaryCrossEntropyLoss``.
    """

    name = "bce"
    min_passages = 1

    def __init__(self, pos_weight: float | Tensor | None = None) -> None:
        super().__init__()
        if isinstance(pos_weight, Tensor):
            if pos_weight.numel() != 1:
                raise ValueError(f"bce expects pos_weight to be a scalar, but got shape {tuple(pos_weight.shape)}")
            pos_weight = float(pos_weight.item())
        if pos_weight is not None:
            F.check_positive(self.name, "pos_weight", pos_weight)
        self.pos_weight = pos_weight

    def compute(self, scores: Tensor, labels: Tensor | None, mask: Tensor) -> Tensor:
        return F.bce(scores, labels, mask, pos_weight=self.pos_weight)

    @property
    def config(self) -> dict[str, Any]:
        return {"pos_weight": self.pos_weight}

"""Pairwise RankNet loss."""
from __future__ import annotations

from typing import Any

from torch import Tensor

from . import functional as F
from .base import RankingLoss

__all__ = ["RankNetLoss"]


class RankNetLoss(RankingLoss):
    """RankNet over all pairs with different labels (see :func:`crossrank.losses.functional.ranknet`).

    ``reduction_log`` defaults to "binary" (``log2(1 + exp(-sigma * (s_i - s_j)))``), as in
    sentence-transformers' ``RankNetLoss``, so the same recipe gives the same loss and gradient;
    "natural" gives the textbook natural log (the same times ln 2).
    """

    name = "ranknet"

    def __init__(self, sigma: float = 1.0, k: int | None = None, reduction_log: str = "binary") -> None:
        super().__init__()
        F.check_positive(self.name, "sigma", sigma)
        F.check_k(self.name, k)
        F.check_choice(self.name, "reduction_log", reduction_log, F.REDUCTION_LOGS)
        self.sigma = sigma
        self.k = k
        self.reduction_log = reduction_log

    def compute(self, scores: Tensor, labels: Tensor | None, mask: Tensor) -> Tensor:
        return F.ranknet(scores, labels, mask, sigma=self.sigma, k=self.k, reduction_log=self.reduction_log)

    @property
    def config(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "k": self.k, "reduction_log": self.reduction_log}

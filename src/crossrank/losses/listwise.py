"""Listwise losses: ListNet, ListMLE and position-aware ListMLE."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from . import functional as F
from .base import RankingLoss

__all__ = ["ListNetLoss", "ListMLELoss", "PListMLELoss"]


class ListNetLoss(RankingLoss):
    """ListNet top-one cross-entropy (sentence-transformers' ``ListNetLoss``)."""

    name = "listnet"

    def compute(self, scores: Tensor, labels: Tensor | None, mask: Tensor) -> Tensor:
        return F.listnet(scores, labels, mask)

    @property
    def config(self) -> dict[str, Any]:
        return {}


class ListMLELoss(RankingLoss):
    """ListMLE: Plackett-Luce likelihood of the label order, ties in input order."""

    name = "listmle"

    def compute(self, scores: Tensor, labels: Tensor | None, mask: Tensor) -> Tensor:
        return F.listmle(scores, labels, mask)

    @property
    def config(self) -> dict[str, Any]:
        return {}


class PListMLELoss(RankingLoss):
    """Position-aware ListMLE. ``lambda_weight`` maps the boolean mask of real positions of the
    label-sorted lists ``[B, N]`` to position weights; the default is ``2^(n - rank) - 1``
    (sentence-transformers' ``PListMLELambdaWeight()``).
    """

    name = "plistmle"

    def __init__(
        self,
        lambda_weight: Callable[[Tensor], Tensor] | None = F.plistmle_default_weight,
        eps: float = 1e-10,
    ) -> None:
        super().__init__()
        if lambda_weight is not None and not callable(lambda_weight):
            raise TypeError(f"{self.name} expects lambda_weight to be a callable or None, but got {lambda_weight!r}")
        F.check_positive(self.name, "eps", eps)
        self.lambda_weight = lambda_weight
        self.eps = eps

    def compute(self, scores: Tensor, labels: Tensor | None, mask: Tensor) -> Tensor:
        return F.plistmle(scores, labels, mask, lambda_weight=self.lambda_weight, eps=self.eps)

    @property
    def config(self) -> dict[str, Any]:
        if self.lambda_weight is None:
            weight = None
        elif self.lambda_weight is F.plistmle_default_weight:
            weight = "default"
        else:
            weight = getattr(self.lambda_weight, "__qualname__", type(self.lambda_weight).__qualname__)
        return {"lambda_weight": weight, "eps": self.eps}

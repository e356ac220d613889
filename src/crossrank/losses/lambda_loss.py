"""The LambdaLoss framework (Wang et al., CIKM 2018) with its NDCG weighting schemes."""
from __future__ import annotations

from typing import Any

from torch import Tensor

from . import functional as F
from .base import RankingLoss

__all__ = ["LambdaLoss"]


class LambdaLoss(RankingLoss):
    """LambdaLoss; ``weighting`` is one of "none", "ndcg1", "ndcg2", "lambdarank", "ndcg2pp".

    See :func:`crossrank.losses.functional.lambda_loss`. Defaults follow sentence-transformers'
    ``LambdaLoss`` (NDCG-Loss2++ with mu=10, sigma=1, log2 reduction).
    """

    name = "lambda"

    def __init__(
        self,
        weighting: str = "ndcg2pp",
        k: int | None = None,
        sigma: float = 1.0,
        mu: float = 10.0,
        eps: float = 1e-10,
        reduction_log: str = "binary",
    ) -> None:
        super().__init__()
        F.check_choice(self.name, "weighting", weighting, F.LAMBDA_WEIGHTINGS)
        F.check_k(self.name, k)
        F.check_positive(self.name, "sigma", sigma)
        F.check_non_negative(self.name, "mu", mu)
        F.check_positive(self.name, "eps", eps)
        F.check_choice(self.name, "reduction_log", reduction_log, F.REDUCTION_LOGS)
        self.weighting = weighting
        self.k = k
        self.sigma = sigma
        self.mu = mu
        self.eps = eps
        self.reduction_log = reduction_log

    def compute(self, scores: Tensor, labels: Tensor | None, mask: Tensor) -> Tensor:
        return F.lambda_loss(
            scores, labels, mask,
            weighting=self.weighting, k=self.k, sigma=self.sigma, mu=self.mu, eps=self.eps,
            reduction_log=self.reduction_log,
        )

    @property
    def config(self) -> dict[str, Any]:
        return {
            "weighting": self.weighting, "k": self.k, "sigma": self.sigma, "mu": self.mu,
            "eps": self.eps, "reduction_log": self.reduction_log,
        }

"""Distillation from a teacher's scores: pointwise MSE and Margin-MSE.

For these losses ``batch["labels"]`` holds the teacher's scores for the same pairs.
"""
from __future__ import annotations

from typing import Any

from torch import Tensor

from . import functional as F
from .base import RankingLoss

__all__ = ["MSELoss", "MarginMSELoss"]


class MSELoss(RankingLoss):
    """MSE between the student's logits and the teacher's scores (sentence-transformers' ``MSELoss``)."""

    name = "mse"
    min_passages = 1
    teacher_targets = True

    def compute(self, scores: Tensor, labels: Tensor | None, mask: Tensor) -> Tensor:
        return F.mse(scores, labels, mask)

    @property
    def config(self) -> dict[str, Any]:
        return {}


class MarginMSELoss(RankingLoss):
    """Margin-MSE: passages[i][0] is the positive, the others negatives; the student's margins
    ``s_pos - s_neg`` regress onto the teacher's ``t_pos - t_neg`` (sentence-transformers'
    cross-encoder ``MarginMSELoss``). Lists may have different numbers of negatives.
    """

    name = "margin_mse"
    teacher_targets = True

    def compute(self, scores: Tensor, labels: Tensor | None, mask: Tensor) -> Tensor:
        return F.margin_mse(scores, labels, mask)

    @property
    def config(self) -> dict[str, Any]:
        return {}

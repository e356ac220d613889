"""Ranking losses for cross-encoders.

``crossrank.losses.functional`` holds the losses as pure functions of padded
``scores[B, N]``, ``labels[B, N]`` and ``mask[B, N]``; the modules below wrap them with
``forward(scorer, batch)`` (see :class:`RankingLoss`), and :func:`get_loss` builds one by name.
"""
from __future__ import annotations

from . import functional
from .base import RankingLoss, Scorer
from .cached_mnrl import CachedMultipleNegativesRankingLoss
from .distillation import MarginMSELoss, MSELoss
from .lambda_loss import LambdaLoss
from .listwise import ListMLELoss, ListNetLoss, PListMLELoss
from .pairwise import RankNetLoss
from .pointwise import BCELoss
from .registry import LOSSES, get_loss, loss_names
from .softmax import GroupedCELoss, MultipleNegativesRankingLoss

__all__ = [
    "BCELoss",
    "CachedMultipleNegativesRankingLoss",
    "GroupedCELoss",
    "LOSSES",
    "LambdaLoss",
    "ListMLELoss",
    "ListNetLoss",
    "MSELoss",
    "MarginMSELoss",
    "MultipleNegativesRankingLoss",
    "PListMLELoss",
    "RankNetLoss",
    "RankingLoss",
    "Scorer",
    "functional",
    "get_loss",
    "loss_names",
]

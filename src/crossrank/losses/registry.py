"""Loss lookup by name: ``get_loss("lambda", weighting="ndcg2", k=10)``."""
from __future__ import annotations

import inspect
from typing import Any

from .base import RankingLoss
from .cached_mnrl import CachedMultipleNegativesRankingLoss
from .distillation import MarginMSELoss, MSELoss
from .lambda_loss import LambdaLoss
from .listwise import ListMLELoss, ListNetLoss, PListMLELoss
from .pairwise import RankNetLoss
from .pointwise import BCELoss
from .softmax import GroupedCELoss, MultipleNegativesRankingLoss

__all__ = ["LOSSES", "get_loss", "loss_names"]

LOSSES: dict[str, type[RankingLoss]] = {
    "bce": BCELoss,
    "mse": MSELoss,
    "ranknet": RankNetLoss,
    "margin_mse": MarginMSELoss,
    "listnet": ListNetLoss,
    "listmle": ListMLELoss,
    "plistmle": PListMLELoss,
    "lambda": LambdaLoss,
    "lambda_loss": LambdaLoss,
    "grouped_ce": GroupedCELoss,
    "mnrl": MultipleNegativesRankingLoss,
    "cached_mnrl": CachedMultipleNegativesRankingLoss,
}


def loss_names() -> list[str]:
    """The names :func:`get_loss` accepts (``lambda_loss`` is an alias of ``lambda``)."""
    return list(LOSSES)


def get_loss(name: str, **options: Any) -> RankingLoss:
    """Build the loss registered under exactly ``name`` with the given options.

    Raises ValueError for an unknown name (listing the valid ones) or an unknown option
    (listing the loss's options).
    """
    if not isinstance(name, str) or name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names are: {', '.join(LOSSES)}")
    cls = LOSSES[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        valid = ", ".join(accepted) if accepted else "none"
        raise ValueError(f"loss {name!r} got unknown option(s) {', '.join(unknown)}; its options are: {valid}")
    return cls(**options)

"""Softmax cross-entropy over a group: Tevatron's grouped CE and multiple negatives ranking."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from . import functional as F
from .base import RankingLoss, Scorer, pad_lists, score_pairs, validate_batch

__all__ = ["GroupedCELoss", "MultipleNegativesRankingLoss", "mnrl_groups"]


class GroupedCELoss(RankingLoss):
    """Tevatron-style grouped cross-entropy: passages[i][0] is the positive, the rest of the
    list its negatives; ``-log softmax(scores / temperature)[positive]`` averaged over queries.
    Labels are not used.
    """

    name = "grouped_ce"
    positive_first = True
    needs_labels = False

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        F.check_positive(self.name, "temperature", temperature)
        self.temperature = temperature

    def compute(self, scores: Tensor, labels: Tensor | None, mask: Tensor) -> Tensor:
        return F.grouped_ce(scores, mask, temperature=self.temperature)

    @property
    def config(self) -> dict[str, Any]:
        return {"temperature": self.temperature}


def _check_num_negatives(name: str, num_negatives: object) -> None:
    if num_negatives is not None and (
        not isinstance(num_negatives, int) or isinstance(num_negatives, bool) or num_negatives < 0
    ):
        raise ValueError(f"{name} expects num_negatives to be a non-negative integer or None, but got {num_negatives!r}")


def mnrl_groups(passages: list[list[str]], num_negatives: int | None) -> list[list[str]]:
    """Candidate lists for multiple negatives ranking, one per query.

    Row i is ``[positive_i] + in-batch negatives + hard negatives_i`` where the in-batch
    negatives are the passages (positives and hard negatives) of the *other* queries, taken in
    column-major order like sentence-transformers; if ``num_negatives`` is smaller than that
    pool, ``num_negatives`` of them are drawn uniformly without replacement (torch's global RNG).
    """
    width = max(len(p) for p in passages)
    groups = []
    for i, own in enumerate(passages):
        pool = [passages[j][c] for c in range(width) for j in range(len(passages)) if j != i and c < len(passages[j])]
        if num_negatives is not None and num_negatives < len(pool):
            if num_negatives == 0:
                pool = []
            else:
                picks = torch.multinomial(torch.ones(len(pool)), num_negatives, replacement=False)
                pool = [pool[k] for k in picks.tolist()]
        groups.append([own[0], *pool, *own[1:]])
    return groups


class MultipleNegativesRankingLoss(RankingLoss):
    """Cross-encoder multiple negatives ranking loss with in-batch negatives.

    passages[i][0] is the positive of query i, passages[i][1:] its hard negatives; the
    passages of the other queries serve as extra negatives (at most ``num_negatives`` per
    query, None = all). The logits go through ``activation`` and are multiplied by ``scale``
    before a softmax cross-entropy with the positive as target. Defaults and computation
    follow sentence-transformers' cross-encoder ``MultipleNegativesRankingLoss``. Labels are
    not used.
    """

    name = "mnrl"
    min_passages = 1  # in-batch negatives
    positive_first = True
    needs_labels = False

    def __init__(
        self,
        scale: float = 10.0,
        num_negatives: int | None = 4,
        activation: str | Callable[[Tensor], Tensor] | None = "sigmoid",
    ) -> None:
        super().__init__()
        F.check_positive(self.name, "scale", scale)
        _check_num_negatives(self.name, num_negatives)
        F.resolve_activation(self.name, activation)  # validates
        self.scale = scale
        self.num_negatives = num_negatives
        self.activation = activation

    def build_groups(self, batch: Mapping[str, Any]) -> tuple[list[tuple[str, str]], list[int]]:
        """Validate the batch, pick the negatives; return the flat pairs and the group sizes."""
        queries, passages, _ = validate_batch(self.name, batch, need_labels=False)
        groups = mnrl_groups(passages, self.num_negatives)
        pairs = [(q, p) for q, group in zip(queries, groups) for p in group]
        return pairs, [len(g) for g in groups]

    def loss_from_flat(self, flat: Tensor, sizes: list[int]) -> Tensor:
        scores, mask = pad_lists(flat, sizes)
        return F.mnrl(scores, mask, scale=self.scale, activation=self.activation)

    def forward(self, scorer: Scorer, batch: Mapping[str, Any]) -> Tensor:
        pairs, sizes = self.build_groups(batch)
        return self.loss_from_flat(score_pairs(self.name, scorer, pairs), sizes)

    def compute(self, scores: Tensor, labels: Tensor | None, mask: Tensor) -> Tensor:
        return F.mnrl(scores, mask, scale=self.scale, activation=self.activation)

    @property
    def config(self) -> dict[str, Any]:
        activation = self.activation
        if activation is not None and not isinstance(activation, str):
            activation = getattr(activation, "__qualname__", type(activation).__qualname__)
        return {"scale": self.scale, "num_negatives": self.num_negatives, "activation": activation}

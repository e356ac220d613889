"""The module interface shared by all losses: score a batch of ragged lists, then pad.

A *scorer* is any callable that takes a list of ``(query, passage)`` string tuples and returns
a 1-D float tensor of logits (one per pair, with grad). A *batch* is a mapping with

* ``queries``: ``list[str]`` of length B,
* ``passages``: ``list[list[str]]``, B lists, possibly of unequal length,
* ``labels``: ``list[list[float]]`` of the same shapes (relevance labels, or teacher scores
  for the distillation losses); losses that need none (grouped_ce, mnrl) ignore it.

:class:`RankingLoss` flattens the pairs, calls the scorer once, pads the logits, labels and
a boolean mask to ``[B, N]`` and hands them to :meth:`RankingLoss.compute`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["RankingLoss", "Scorer", "check_scorer_output", "pad_lists", "score_pairs", "validate_batch"]

Scorer = Callable[[list[tuple[str, str]]], Tensor]


def _is_str_list(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def validate_batch(name: str, batch: object, *, need_labels: bool) -> tuple[list[str], list[list[str]], list[list[float]] | None]:
    """Check the batch layout and return (queries, passages, labels)."""
    if not isinstance(batch, Mapping):
        keys = "'queries', 'passages', 'labels'" if need_labels else "'queries', 'passages'"
        raise TypeError(f"{name} expects the batch to be a mapping with keys {keys}, but got {type(batch).__name__}")
    required = ("queries", "passages", "labels") if need_labels else ("queries", "passages")
    missing = [key for key in required if key not in batch]
    if missing:
        raise KeyError(f"{name} expects batch keys {list(required)}, but {missing} are missing")
    queries, passages = batch["queries"], batch["passages"]
    if not _is_str_list(queries) or not all(isinstance(q, str) for q in queries):
        raise TypeError(f"{name} expects batch['queries'] to be a list of strings")
    if not _is_str_list(passages) or not all(_is_str_list(p) for p in passages):
        raise TypeError(f"{name} expects batch['passages'] to be a list of lists of strings")
    if len(queries) == 0:
        raise ValueError(f"{name} expects at least one query, but got an empty batch")
    if len(passages) != len(queries):
        raise ValueError(
            f"{name} expects as many passage lists as queries, but got {len(passages)} and {len(queries)}"
        )
    for i, plist in enumerate(passages):
        if len(plist) == 0:
            raise ValueError(f"{name} expects at least one passage per query, but passages[{i}] is empty")
        if not all(isinstance(p, str) for p in plist):
            raise TypeError(f"{name} expects batch['passages'][{i}] to contain only strings")
    labels = None
    if need_labels:
        labels = batch["labels"]
        # Also accept a 2-D tensor or a list of 1-D tensors (as collators often produce).
        if isinstance(labels, Tensor) and labels.dim() == 2:
            labels = labels.tolist()
        elif _is_str_list(labels):
            labels = [row.tolist() if isinstance(row, Tensor) and row.dim() == 1 else row for row in labels]
        if not _is_str_list(labels) or not all(_is_str_list(row) for row in labels):
            raise TypeError(f"{name} expects batch['labels'] to be a list of lists of numbers")
        if len(labels) != len(queries):
            raise ValueError(f"{name} expects as many label lists as queries, but got {len(labels)} and {len(queries)}")
        for i, (row, plist) in enumerate(zip(labels, passages)):
            if len(row) != len(plist):
                raise ValueError(
                    f"{name} expects labels[{i}] to have as many entries as passages[{i}], "
                    f"but got {len(row)} and {len(plist)}"
                )
    return list(queries), [list(p) for p in passages], labels


def check_scorer_output(name: str, out: object, num_pairs: int) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"{name} expects the scorer to return a torch.Tensor, but got {type(out).__name__}")
    if out.shape != (num_pairs,):
        raise ValueError(
            f"{name} expects the scorer to return a 1-D tensor of {num_pairs} scores, but got shape {tuple(out.shape)}"
        )
    if not out.is_floating_point():
        raise TypeError(f"{name} expects the scorer to return floating-point scores, but got dtype {out.dtype}")
    if out.dtype in (torch.float16, torch.bfloat16):
        out = out.float()
    return out


def score_pairs(name: str, scorer: Scorer, pairs: list[tuple[str, str]]) -> Tensor:
    """Call the scorer once on all pairs and validate what it returns."""
    if not callable(scorer):
        raise TypeError(f"{name} expects a callable scorer, but got {type(scorer).__name__}")
    return check_scorer_output(name, scorer(pairs), len(pairs))


def pad_lists(flat: Tensor, lengths: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Split ``flat`` (the concatenation of B lists) into a zero-padded ``[B, max_len]`` matrix and its mask.

    Differentiable with respect to ``flat``.
    """
    rows = list(torch.split(flat, list(lengths)))
    matrix = nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=0.0)
    width = matrix.shape[1]
    lengths_t = torch.as_tensor(list(lengths), device=flat.device)
    mask = torch.arange(width, device=flat.device)[None, :] < lengths_t[:, None]
    return matrix, mask


def labels_matrix(name: str, labels: list[list[float]], like: Tensor) -> Tensor:
    flat: list[float] = []
    for i, row in enumerate(labels):
        for j, value in enumerate(row):
            if isinstance(value, Tensor):
                if value.numel() != 1:
                    raise TypeError(f"{name} expects labels[{i}][{j}] to be a number, but got a tensor of shape {tuple(value.shape)}")
                value = value.item()
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                try:
                    value = float(value)  # numpy scalars and the like
                except (TypeError, ValueError):
                    raise TypeError(f"{name} expects labels[{i}][{j}] to be a number, but got {value!r}") from None
            flat.append(float(value))
    flat_t = torch.tensor(flat, dtype=like.dtype, device=like.device)
    matrix, _ = pad_lists(flat_t, [len(row) for row in labels])
    return matrix


class RankingLoss(nn.Module):
    """Base class: ``forward(scorer, batch) -> loss`` around a functional loss.

    Subclasses set ``name`` (the registry name), ``needs_labels`` and implement
    :meth:`compute` on padded ``scores``, ``labels`` and ``mask`` tensors, and :attr:`config`.
    """

    name: str = "ranking_loss"
    needs_labels: bool = True
    #: passages each example must have (2: the loss compares passages of one query)
    min_passages: int = 2
    #: the first passage of each list is taken as the positive (labels unused)
    positive_first: bool = False
    #: labels are a teacher's scores, not relevance grades
    teacher_targets: bool = False

    def forward(self, scorer: Scorer, batch: Mapping[str, Any]) -> Tensor:
        queries, passages, labels = validate_batch(self.name, batch, need_labels=self.needs_labels)
        pairs = [(q, p) for q, plist in zip(queries, passages) for p in plist]
        flat = score_pairs(self.name, scorer, pairs)
        scores, mask = pad_lists(flat, [len(p) for p in passages])
        label_t = labels_matrix(self.name, labels, scores) if labels is not None else None
        return self.compute(scores, label_t, mask)

    def compute(self, scores: Tensor, labels: Tensor | None, mask: Tensor) -> Tensor:
        raise NotImplementedError

    @property
    def config(self) -> dict[str, Any]:
        """The loss options, for logging."""
        return {}

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={value!r}" for key, value in self.config.items())

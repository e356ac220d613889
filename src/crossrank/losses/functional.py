"""Ranking losses as pure functions of a padded score matrix.

Every loss takes ``scores[B, N]`` (the model's logits, one row per query), usually
``labels[B, N]`` (relevance labels, or teacher scores for the distillation losses) and a
boolean ``mask[B, N]`` (True = real entry, False = padding of a shorter list), and returns
a 0-d tensor. ``mask=None`` means every entry is real. Padded entries never influence the
value or the gradient, wherever they sit in the row.

The semantics follow sentence-transformers' cross-encoder losses (see the notes on each
function); this module is an independent implementation and does not import it.

The LambdaLoss family (``lambda_loss``, ``ranknet``) lives in
:mod:`crossrank.losses.functional_lambda` and the shared checks in
:mod:`crossrank.losses.functional_common`; both are re-exported here, so every loss is
``crossrank.losses.functional.<name>``.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from .functional_common import (
    _check_inputs,
    _require_first_column_real,
    _require_nonempty_rows,
    _shape,
    _sort_desc,
    _zero_like_loss,
    check_positive,
    resolve_activation,
)
# Re-exported for the nn.Module wrappers, which check their options up front (``F.check_k``, ...).
from .functional_common import ACTIVATIONS, check_choice, check_k, check_non_negative  # noqa: F401
from .functional_lambda import LAMBDA_WEIGHTINGS, REDUCTION_LOGS, lambda_loss, ranknet

__all__ = [
    "ACTIVATIONS",
    "LAMBDA_WEIGHTINGS",
    "REDUCTION_LOGS",
    "bce",
    "grouped_ce",
    "lambda_loss",
    "listmle",
    "listnet",
    "margin_mse",
    "mnrl",
    "mse",
    "plistmle",
    "plistmle_default_weight",
    "ranknet",
]


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    count = mask.sum()
    total = torch.where(mask, values, torch.zeros_like(values)).sum()
    return total / count.clamp(min=1)


# --------------------------------------------------------------------------------------
# Pointwise
# --------------------------------------------------------------------------------------


def bce(scores: Tensor, labels: Tensor, mask: Tensor | None = None, pos_weight: float | Tensor | None = None) -> Tensor:
    """Binary cross-entropy on logits, averaged over the real entries.

    ``labels`` are targets in [0, 1] (soft targets allowed); ``pos_weight`` multiplies the
    positive term as in :class:`torch.nn.BCEWithLogitsLoss`. Matches sentence-transformers'
    ``BinaryCrossEntropyLoss`` on the flattened real pairs.
    """
    scores, labels, mask = _check_inputs("bce", scores, labels, mask)
    if pos_weight is not None:
        if isinstance(pos_weight, Tensor):
            if pos_weight.numel() != 1:
                raise ValueError(f"bce expects pos_weight to be a scalar, but got shape {_shape(pos_weight)}")
            pos_weight = float(pos_weight.item())
        check_positive("bce", "pos_weight", pos_weight)
        pos_weight = torch.tensor(pos_weight, dtype=scores.dtype, device=scores.device)
    real_labels = labels[mask]
    if real_labels.numel() and (real_labels.min() < 0 or real_labels.max() > 1):
        raise ValueError(
            f"bce expects labels in [0, 1], but got values from {real_labels.min().item():g} "
            f"to {real_labels.max().item():g}"
        )
    if not mask.any():
        return _zero_like_loss(scores)
    safe_labels = torch.where(mask, labels, torch.zeros_like(labels))
    per_entry = F.binary_cross_entropy_with_logits(scores, safe_labels, pos_weight=pos_weight, reduction="none")
    return _masked_mean(per_entry, mask)


def mse(scores: Tensor, teacher_scores: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error between student logits and teacher scores over the real entries.

    The teacher scores are treated as constants. Matches sentence-transformers' ``MSELoss``.
    """
    scores, teacher_scores, mask = _check_inputs("mse", scores, teacher_scores, mask, labels_name="teacher_scores")
    if not mask.any():
        return _zero_like_loss(scores)
    sq = (scores - torch.where(mask, teacher_scores, scores.detach())) ** 2
    return _masked_mean(sq, mask)


# --------------------------------------------------------------------------------------
# Pairwise margins (distillation); RankNet and LambdaLoss live in functional_lambda
# --------------------------------------------------------------------------------------


def margin_mse(scores: Tensor, teacher_scores: Tensor, mask: Tensor | None = None) -> Tensor:
    """Margin-MSE distillation (Hofstätter et al.): column 0 is the positive, the rest negatives.

    ``mean_{i, j>=1 real} ((s_i0 - s_ij) - (t_i0 - t_ij))^2``, teacher scores treated as constants.
    Matches sentence-transformers' cross-encoder ``MarginMSELoss`` given positive and negative
    teacher scores.
    """
    name = "margin_mse"
    scores, teacher_scores, mask = _check_inputs(name, scores, teacher_scores, mask, labels_name="teacher_scores")
    _require_first_column_real(name, mask)
    if scores.shape[1] < 2:
        raise ValueError(f"{name} expects a positive and at least one negative per row, but got shape {_shape(scores)}")
    student = scores[:, :1] - scores[:, 1:]
    teacher = teacher_scores[:, :1] - teacher_scores[:, 1:]
    neg_mask = mask[:, 1:]
    if not neg_mask.any():
        raise ValueError(f"{name} expects at least one real negative in the batch, but all negatives are padding")
    teacher = torch.where(neg_mask, teacher, student.detach())
    return _masked_mean((student - teacher) ** 2, neg_mask)


# --------------------------------------------------------------------------------------
# Listwise
# --------------------------------------------------------------------------------------


def _masked_log_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    log_p = torch.log_softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
    return log_p.masked_fill(~mask, 0.0)


def listnet(scores: Tensor, labels: Tensor, mask: Tensor | None = None) -> Tensor:
    """ListNet (top-one): cross-entropy between softmax(labels) and softmax(scores) per list.

    Averaged over the lists. Matches sentence-transformers' ``ListNetLoss``.
    """
    name = "listnet"
    scores, labels, mask = _check_inputs(name, scores, labels, mask)
    _require_nonempty_rows(name, mask)
    target = torch.softmax(labels.masked_fill(~mask, float("-inf")), dim=1)
    target = target.masked_fill(~mask, 0.0)
    per_list = -(target * _masked_log_softmax(scores, mask)).sum(dim=1)
    return per_list.mean()


def plistmle_default_weight(mask: Tensor) -> Tensor:
    """Default p-ListMLE position weights ``2^(n - rank) - 1`` (rank from 1, n real docs in the row).

    ``mask[B, N]`` marks the real positions of the label-sorted lists (a prefix of each row).
    Rows longer than 127 are rescaled by a common factor so the weights stay finite; the loss
    normalises the weights per row, so the scale does not matter. Same values as
    sentence-transformers' ``PListMLELambdaWeight()``.
    """
    n = mask.sum(dim=1, keepdim=True).to(torch.float64)
    ranks = torch.arange(1, mask.shape[1] + 1, device=mask.device, dtype=torch.float64)[None, :]
    shift = (n - 127.0).clamp(min=0.0)
    weights = torch.pow(2.0, n - ranks - shift) - torch.pow(2.0, -shift)
    return torch.where(mask, weights, torch.zeros_like(weights))


def _plackett_luce_log_probs(scores: Tensor, labels: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Log-probabilities of each step of the label order (stable sort), and the sorted mask."""
    order = _sort_desc(labels, mask)
    s = scores.gather(1, order)
    m = mask.gather(1, order)
    floor = torch.finfo(s.dtype).min
    s = torch.where(m, s, torch.full_like(s, floor))
    # log sum_{t' >= t} exp(s_t'): reversed cumulative log-sum-exp.
    log_norm = torch.flip(torch.logcumsumexp(torch.flip(s, dims=[1]), dim=1), dims=[1])
    log_probs = torch.where(m, s - log_norm, torch.zeros_like(s))
    return log_probs, m


def listmle(scores: Tensor, labels: Tensor, mask: Tensor | None = None) -> Tensor:
    """ListMLE: negative Plackett-Luce log-likelihood of the ranking given by the labels.

    The target ranking sorts each list by label, descending; ties keep their input order
    (stable sort). Averaged over lists. Matches sentence-transformers' ``ListMLELoss``
    (``respect_input_order=False`` for distinct labels, ``True`` for lists already sorted).
    """
    name = "listmle"
    scores, labels, mask = _check_inputs(name, scores, labels, mask)
    _require_nonempty_rows(name, mask)
    log_probs, _ = _plackett_luce_log_probs(scores, labels, mask)
    return (-log_probs.sum(dim=1)).mean()


def plistmle(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    lambda_weight: Callable[[Tensor], Tensor] | None = plistmle_default_weight,
    eps: float = 1e-10,
) -> Tensor:
    """Position-aware ListMLE: ListMLE whose per-position terms are weighted.

    ``lambda_weight(position_mask) -> weights[B, N]`` receives the boolean mask of real positions
    of the label-sorted lists (real ones first) and returns a weight per position (zero for
    padding); the weights are normalised to sum to one per list (``w / (sum w + eps)``). The
    default is ``2^(n - rank) - 1`` (:func:`plistmle_default_weight`); ``None`` gives plain
    ListMLE. Matches sentence-transformers' ``PListMLELoss`` / ``PListMLELambdaWeight``.
    """
    name = "plistmle"
    scores, labels, mask = _check_inputs(name, scores, labels, mask)
    _require_nonempty_rows(name, mask)
    if lambda_weight is not None and not callable(lambda_weight):
        raise TypeError(f"{name} expects lambda_weight to be a callable or None, but got {lambda_weight!r}")
    check_positive(name, "eps", eps)
    log_probs, sorted_mask = _plackett_luce_log_probs(scores, labels, mask)
    if lambda_weight is not None:
        weights = lambda_weight(sorted_mask)
        if not isinstance(weights, Tensor) or weights.shape != scores.shape:
            got = _shape(weights) if isinstance(weights, Tensor) else type(weights).__name__
            raise ValueError(
                f"{name} expects lambda_weight to return weights of shape {_shape(scores)}, but got {got}"
            )
        weights = weights.to(device=scores.device, dtype=scores.dtype)
        weights = torch.where(sorted_mask, weights, torch.zeros_like(weights))
        weights = weights / (weights.sum(dim=1, keepdim=True) + eps)
        log_probs = log_probs * weights
    return (-log_probs.sum(dim=1)).mean()


# --------------------------------------------------------------------------------------
# Softmax cross-entropy over a group (Tevatron, multiple negatives ranking)
# --------------------------------------------------------------------------------------


def grouped_ce(scores: Tensor, mask: Tensor | None = None, temperature: float = 1.0) -> Tensor:
    """Softmax cross-entropy with the positive in column 0 and negatives in the other columns.

    ``mean_i -log softmax(scores_i / temperature)[0]`` over the real entries of each row
    (the Tevatron / "localized contrastive estimation" grouped loss).
    """
    name = "grouped_ce"
    scores, _, mask = _check_inputs(name, scores, None, mask)
    _require_first_column_real(name, mask)
    check_positive(name, "temperature", temperature)
    log_p = _masked_log_softmax(scores / temperature, mask)
    return (-log_p[:, 0]).mean()


def mnrl(
    scores: Tensor,
    mask: Tensor | None = None,
    scale: float = 10.0,
    activation: str | Callable[[Tensor], Tensor] | None = "sigmoid",
) -> Tensor:
    """Multiple negatives ranking loss on cross-encoder logits.

    ``grouped_ce(scale * activation(scores))``: column 0 holds the positive, the other real
    columns the (hard and in-batch) negatives. Same computation as sentence-transformers'
    cross-encoder ``MultipleNegativesRankingLoss`` (default sigmoid activation, scale 10).
    """
    name = "mnrl"
    scores, _, mask = _check_inputs(name, scores, None, mask)
    check_positive(name, "scale", scale)
    act = resolve_activation(name, activation)
    _require_first_column_real(name, mask)
    log_p = _masked_log_softmax(act(scores) * scale, mask)
    return (-log_p[:, 0]).mean()

"""The LambdaLoss family as pure functions: LambdaLoss with its weighting schemes, and RankNet.

Same conventions as :mod:`crossrank.losses.functional` (which re-exports these names): padded
``scores[B, N]``, ``labels[B, N]``, boolean ``mask[B, N]``, a 0-d tensor back. RankNet is
LambdaLoss without weighting, as in sentence-transformers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from .functional_common import (
    _check_inputs,
    _sort_desc,
    _zero_like_loss,
    check_choice,
    check_k,
    check_non_negative,
    check_positive,
)

__all__ = ["LAMBDA_WEIGHTINGS", "REDUCTION_LOGS", "lambda_loss", "ranknet"]

LAMBDA_WEIGHTINGS = ("none", "ndcg1", "ndcg2", "lambdarank", "ndcg2pp")
REDUCTION_LOGS = ("natural", "binary")

# Score differences are clamped to this range before the log-sigmoid (as sentence-transformers does).
_MAX_SCORE_DIFF = 1e8


@dataclass(frozen=True)
class _Scheme:
    """The checked settings of one LambdaLoss (see :func:`lambda_loss`)."""

    weighting: str
    k: int | None
    sigma: float
    mu: float  # used by ndcg2pp only
    eps: float  # used by the NDCG weightings only
    reduction_log: str


def _lambda_core(scores: Tensor, labels: Tensor, mask: Tensor, scheme: _Scheme) -> Tensor:
    """LambdaLoss on checked inputs (from :func:`_check_inputs`) with checked settings."""
    weighting, k, sigma, mu, eps = scheme.weighting, scheme.k, scheme.sigma, scheme.mu, scheme.eps
    batch, n = scores.shape
    if batch == 0 or n == 0 or not mask.any():
        return _zero_like_loss(scores)
    device, dtype = scores.device, scores.dtype

    # Everything is expressed in the order the model currently ranks the documents.
    pred_order = _sort_desc(scores, mask)
    s = scores.gather(1, pred_order)
    y = labels.gather(1, pred_order)
    m = mask.gather(1, pred_order)
    s = torch.where(m, s, torch.zeros_like(s))
    y_raw = torch.where(m, y, torch.zeros_like(y))

    pair_real = m[:, :, None] & m[:, None, :]
    if weighting == "ndcg1":
        # NDCG-Loss1 sums over every pair of real documents (diagonal and ties included).
        pairs = pair_real
    else:
        pairs = pair_real & (y_raw[:, :, None] > y_raw[:, None, :])
    if k is not None and k < n:
        rank_ok = torch.arange(n, device=device) < k
        pairs = pairs & (rank_ok[:, None] | rank_ok[None, :])[None, :, :]

    weights: Tensor | float
    if weighting == "none":
        weights = 1.0
    else:
        # Gains use labels clipped at zero; padding contributes no gain.
        gains_raw = torch.pow(2.0, y_raw.clamp(min=0.0)) - 1.0
        gains_raw = torch.where(m, gains_raw, torch.zeros_like(gains_raw))
        positions = torch.arange(1, n + 1, device=device, dtype=dtype)
        discount = torch.log2(1.0 + positions)  # discount of rank p (1-based) is log2(1 + p)
        ideal_labels = torch.sort(labels.masked_fill(~mask, 0.0).clamp(min=0.0), dim=1, descending=True).values
        ideal_dcg_terms = (torch.pow(2.0, ideal_labels) - 1.0) / discount
        cutoff = n if k is None else min(k, n)
        max_dcg = ideal_dcg_terms[:, :cutoff].sum(dim=1).clamp(min=eps)
        gain = gains_raw / max_dcg[:, None]
        gain_gap = (gain[:, :, None] - gain[:, None, :]).abs()
        if weighting == "ndcg1":
            weights = (gain / discount)[:, :, None]
        else:
            inv = 1.0 / discount
            if weighting in ("ndcg2", "ndcg2pp"):
                # |1/D(|i-j|) - 1/D(|i-j|+1)| where D(p) = log2(1 + p); zero on the diagonal.
                gap = (torch.arange(n, device=device)[:, None] - torch.arange(n, device=device)[None, :]).abs()
                d = gap.to(dtype)
                delta = (1.0 / torch.log2(1.0 + d.clamp(min=1.0)) - 1.0 / torch.log2(2.0 + d)).abs()
                delta = torch.where(gap == 0, torch.zeros_like(delta), delta)
                ndcg2 = delta[None, :, :] * gain_gap
            if weighting in ("lambdarank", "ndcg2pp"):
                lambdarank = (inv[:, None] - inv[None, :]).abs()[None, :, :] * gain_gap
            if weighting == "ndcg2":
                weights = ndcg2
            elif weighting == "lambdarank":
                weights = lambdarank
            else:
                weights = mu * ndcg2 + lambdarank

    diffs = (s[:, :, None] - s[:, None, :]).clamp(min=-_MAX_SCORE_DIFF, max=_MAX_SCORE_DIFF)
    diffs = torch.nan_to_num(diffs, nan=0.0)
    log_probs = weights * F.logsigmoid(sigma * diffs)
    if scheme.reduction_log == "binary":
        log_probs = log_probs / math.log(2.0)
    selected = torch.where(pairs, log_probs, torch.zeros_like(log_probs))
    count = pairs.sum().clamp(min=1)
    return -selected.sum() / count


def lambda_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    weighting: str = "ndcg2pp",
    k: int | None = None,
    sigma: float = 1.0,
    *,
    mu: float = 10.0,
    eps: float = 1e-10,
    reduction_log: str = "binary",
) -> Tensor:
    """LambdaLoss (Wang et al., 2018) with one of the weighting schemes in ``LAMBDA_WEIGHTINGS``.

    With the documents sorted by the model's scores, the loss is
    ``-sum_{(i,j)} w_ij * log_b sigmoid(sigma * (s_i - s_j)) / #pairs`` over the pairs of real
    documents with ``label_i > label_j`` (for ``ndcg1``: every pair of real documents) where at
    least one of the two is ranked in the model's top ``k``; the average is over all pairs of the
    batch. Gains are ``(2^max(label, 0) - 1) / maxDCG@k``, discounts ``log2(1 + rank)``.
    ``weighting`` selects ``w``: ``none`` (1), ``ndcg1``, ``ndcg2``, ``lambdarank`` or
    ``ndcg2pp`` (``mu * ndcg2 + lambdarank``). ``reduction_log`` "binary" uses log2, "natural"
    uses ln. Matches sentence-transformers' ``LambdaLoss`` with ``NoWeightingScheme``,
    ``NDCGLoss1Scheme``, ``NDCGLoss2Scheme``, ``LambdaRankScheme`` and ``NDCGLoss2PPScheme``.
    """
    name = "lambda_loss"
    scores, labels, mask = _check_inputs(name, scores, labels, mask)
    check_choice(name, "weighting", weighting, LAMBDA_WEIGHTINGS)
    check_k(name, k)
    check_positive(name, "sigma", sigma)
    check_positive(name, "eps", eps)
    check_non_negative(name, "mu", mu)
    check_choice(name, "reduction_log", reduction_log, REDUCTION_LOGS)
    scheme = _Scheme(weighting=weighting, k=k, sigma=sigma, mu=mu, eps=eps, reduction_log=reduction_log)
    return _lambda_core(scores, labels, mask, scheme)


def ranknet(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    sigma: float = 1.0,
    *,
    k: int | None = None,
    reduction_log: str = "binary",
) -> Tensor:
    """RankNet: mean over the pairs with ``label_i > label_j`` of ``log2(1 + exp(-sigma (s_i - s_j)))``.

    The mean runs over all such pairs of the batch. ``k`` keeps only pairs with at least one
    document in the model's top ``k``. This is sentence-transformers' ``RankNetLoss`` (LambdaLoss
    without weighting), with its default ``reduction_log="binary"`` (log base 2), so a recipe
    moved from there gets the same loss and gradient. ``reduction_log="natural"`` gives the
    textbook ``log(1 + exp(-sigma (s_i - s_j)))``, ln 2 times (about 0.69x) the default.
    """
    name = "ranknet"
    scores, labels, mask = _check_inputs(name, scores, labels, mask)
    check_positive(name, "sigma", sigma)
    check_k(name, k)
    check_choice(name, "reduction_log", reduction_log, REDUCTION_LOGS)
    scheme = _Scheme(weighting="none", k=k, sigma=sigma, mu=0.0, eps=1e-10, reduction_log=reduction_log)
    return _lambda_core(scores, labels, mask, scheme)

"""Ranking losses as pure functions of a padded score matrix.

Every loss takes ``scores[B, N]`` (the model's logits, one row per query), usually
``labels[B, N]`` (relevance labels, or teacher scores for the distillation losses) and a
boolean ``mask[B, N]`` (True = real entry, False = padding of a shorter list), and returns
a 0-d tensor. ``mask=None`` means every entry is real. Padded entries never influence the
value or the gradient, wherever they sit in the row.

The semantics follow sentence-transformers' cross-encoder losses (see the notes on each
function); this module is an independent implementation and does not import it.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

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

LAMBDA_WEIGHTINGS = ("none", "ndcg1", "ndcg2", "lambdarank", "ndcg2pp")
REDUCTION_LOGS = ("natural", "binary")
ACTIVATIONS = ("sigmoid", "tanh", "identity")

# Score differences are clamped to this range before the log-sigmoid (as sentence-transformers does).
_MAX_SCORE_DIFF = 1e8


# --------------------------------------------------------------------------------------
# Validation helpers (shared with the nn.Module wrappers, which check options up front)
# --------------------------------------------------------------------------------------


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _check_scores(name: str, scores: object) -> None:
    if not isinstance(scores, Tensor):
        raise TypeError(f"{name} expects scores to be a torch.Tensor, but got {type(scores).__name__}")
    if scores.dim() != 2:
        raise ValueError(f"{name} expects scores of shape (batch, list_size), but got shape {_shape(scores)}")
    if not scores.is_floating_point():
        raise TypeError(f"{name} expects floating-point scores, but got dtype {scores.dtype}")


def _check_inputs(
    name: str,
    scores: Tensor,
    labels: Tensor | None,
    mask: Tensor | None,
    *,
    labels_name: str = "labels",
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Validate shapes/dtypes; return (scores, labels, mask) with mask materialised.

    Half-precision scores are computed in float32, like sentence-transformers does.
    """
    _check_scores(name, scores)
    if scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()
    if labels is not None:
        if not isinstance(labels, Tensor):
            raise TypeError(f"{name} expects {labels_name} to be a torch.Tensor, but got {type(labels).__name__}")
        if labels.shape != scores.shape:
            raise ValueError(
                f"{name} expects scores and {labels_name} of the same shape, "
                f"but got {_shape(scores)} and {_shape(labels)}"
            )
        labels = labels.detach().to(device=scores.device, dtype=scores.dtype)
    if mask is None:
        mask = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    else:
        if not isinstance(mask, Tensor):
            raise TypeError(f"{name} expects mask to be a torch.Tensor, but got {type(mask).__name__}")
        if mask.shape != scores.shape:
            raise ValueError(
                f"{name} expects scores and mask of the same shape, but got {_shape(scores)} and {_shape(mask)}"
            )
        if mask.dtype != torch.bool:
            raise TypeError(f"{name} expects a boolean mask, but got dtype {mask.dtype}")
        mask = mask.to(scores.device)
    # Whatever sits in padded slots (0, -inf, NaN) must not reach the value or the gradient.
    scores = torch.where(mask, scores, torch.zeros_like(scores))
    if labels is not None:
        labels = torch.where(mask, labels, torch.zeros_like(labels))
    return scores, labels, mask


def _require_nonempty_rows(name: str, mask: Tensor) -> None:
    if mask.shape[0] == 0:
        raise ValueError(f"{name} expects at least one list, but got an empty batch")
    empty = (~mask.any(dim=1)).nonzero().flatten()
    if empty.numel():
        raise ValueError(f"{name} expects at least one real entry per list, but rows {empty.tolist()} are all padding")


def _require_first_column_real(name: str, mask: Tensor) -> None:
    if mask.shape[0] == 0 or mask.shape[1] == 0:
        raise ValueError(f"{name} expects at least one list with a positive in column 0, but got shape {_shape(mask)}")
    missing = (~mask[:, 0]).nonzero().flatten()
    if missing.numel():
        raise ValueError(
            f"{name} expects the positive in column 0 of every row, but column 0 is padding in rows {missing.tolist()}"
        )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_positive(name: str, option: str, value: object) -> None:
    """Raise ValueError unless ``value`` is a finite number > 0."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} expects {option} to be a positive number, but got {value!r}")


def check_k(name: str, k: object) -> None:
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k <= 0):
        raise ValueError(f"{name} expects k to be a positive integer or None, but got {k!r}")


def check_choice(name: str, option: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} expects {option} to be one of {', '.join(map(repr, choices))}, but got {value!r}")


def resolve_activation(name: str, activation: object) -> Callable[[Tensor], Tensor]:
    """Map an activation option (a name, None for identity, or a callable) to a function."""
    if activation is None or activation == "identity":
        return lambda t: t
    if activation == "sigmoid":
        return torch.sigmoid
    if activation == "tanh":
        return torch.tanh
    if callable(activation) and not isinstance(activation, str):
        return activation
    raise ValueError(
        f"{name} expects activation to be one of {', '.join(map(repr, ACTIVATIONS))}, None or a callable, "
        f"but got {activation!r}"
    )


def _zero_like_loss(scores: Tensor) -> Tensor:
    # Keeps the loss connected to the graph so that .backward() works and yields zero gradients.
    return scores.sum() * 0.0


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
# Pairwise (RankNet) and the LambdaLoss framework
# --------------------------------------------------------------------------------------


def _sort_desc(keys: Tensor, mask: Tensor) -> Tensor:
    """Indices sorting each row by ``keys`` descending (stable), real entries before padding."""
    filled = keys.masked_fill(~mask, float("-inf"))
    order = torch.sort(filled, dim=1, descending=True, stable=True).indices
    # A second stable pass keeps real entries first even if a real key is -inf.
    real_first = torch.sort(mask.gather(1, order).to(torch.uint8), dim=1, descending=True, stable=True).indices
    return order.gather(1, real_first)


def _lambda_core(
    name: str,
    scores: Tensor,
    labels: Tensor,
    mask: Tensor,
    weighting: str,
    k: int | None,
    sigma: float,
    mu: float,
    eps: float,
    reduction_log: str,
) -> Tensor:
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
    if reduction_log == "binary":
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
    if not _is_number(mu) or not math.isfinite(mu) or mu < 0:
        raise ValueError(f"{name} expects mu to be a non-negative number, but got {mu!r}")
    check_choice(name, "reduction_log", reduction_log, REDUCTION_LOGS)
    return _lambda_core(name, scores, labels, mask, weighting, k, sigma, mu, eps, reduction_log)


def ranknet(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    sigma: float = 1.0,
    *,
    k: int | None = None,
    reduction_log: str = "natural",
) -> Tensor:
    """RankNet: mean over the pairs with ``label_i > label_j`` of ``log(1 + exp(-sigma (s_i - s_j)))``.

    The mean runs over all such pairs of the batch. ``k`` keeps only pairs with at least one
    document in the model's top ``k``. This is sentence-transformers' ``RankNetLoss`` (LambdaLoss
    without weighting); note that its default is ``reduction_log="binary"`` (log2) whereas the
    default here is the textbook natural log.
    """
    name = "ranknet"
    scores, labels, mask = _check_inputs(name, scores, labels, mask)
    check_positive(name, "sigma", sigma)
    check_k(name, k)
    check_choice(name, "reduction_log", reduction_log, REDUCTION_LOGS)
    return _lambda_core(name, scores, labels, mask, "none", k, sigma, 0.0, 1e-10, reduction_log)


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

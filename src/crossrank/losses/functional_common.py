"""What the functional losses share: input and option checks, and masked-tensor helpers.

The checks raise ``ValueError`` / ``TypeError`` with messages of the form
"<loss> expects <what>, but got <what came>"; the nn.Module wrappers call the option checks
up front, through :mod:`crossrank.losses.functional`, which re-exports them.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["ACTIVATIONS", "check_choice", "check_k", "check_non_negative", "check_positive", "resolve_activation"]

ACTIVATIONS = ("sigmoid", "tanh", "identity")


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


def check_non_negative(name: str, option: str, value: object) -> None:
    """Raise ValueError unless ``value`` is a finite number >= 0."""
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} expects {option} to be a non-negative number, but got {value!r}")


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


def _sort_desc(keys: Tensor, mask: Tensor) -> Tensor:
    """Indices sorting each row by ``keys`` descending (stable), real entries before padding."""
    filled = keys.masked_fill(~mask, float("-inf"))
    order = torch.sort(filled, dim=1, descending=True, stable=True).indices
    # A second stable pass keeps real entries first even if a real key is -inf.
    real_first = torch.sort(mask.gather(1, order).to(torch.uint8), dim=1, descending=True, stable=True).indices
    return order.gather(1, real_first)

"""Activation functions applied to a cross-encoder's logits, by name.

Names are what users pass (`"sigmoid"`); dotted torch paths are what sentence-transformers
stores in a checkpoint (`"torch.nn.modules.activation.Sigmoid"`). Both map to one function.
"""
from __future__ import annotations

import torch

ACTIVATIONS = {
    "identity": "torch.nn.modules.linear.Identity",
    "sigmoid": "torch.nn.modules.activation.Sigmoid",
    "tanh": "torch.nn.modules.activation.Tanh",
    "softmax": "torch.nn.modules.activation.Softmax",
}
_BY_PATH = {path: name for name, path in ACTIVATIONS.items()}
# older sentence-transformers releases wrote the short module path
_BY_PATH.update({"torch.nn.Identity": "identity", "torch.nn.Sigmoid": "sigmoid", "torch.nn.Tanh": "tanh"})


def activation_name(value: str | None) -> str | None:
    """Normalise a user name or a stored dotted path to one of ACTIVATIONS; None stays None."""
    if value is None:
        return None
    key = value.strip()
    if key.lower() in ACTIVATIONS:
        return key.lower()
    if key in _BY_PATH:
        return _BY_PATH[key]
    raise ValueError(f"unknown activation {value!r}; expected one of {sorted(ACTIVATIONS)} or their torch paths")


def activation_path(name: str) -> str:
    """The dotted torch path sentence-transformers stores for an activation name."""
    return ACTIVATIONS[activation_name(name)]


def apply_activation(logits: torch.Tensor, name: str) -> torch.Tensor:
    if name == "identity":
        return logits
    if name == "sigmoid":
        return torch.sigmoid(logits)
    if name == "tanh":
        return torch.tanh(logits)
    if name == "softmax":
        return torch.softmax(logits, dim=-1) if logits.ndim > 1 else torch.sigmoid(logits)
    raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")

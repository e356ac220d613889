"""Multiple negatives ranking with gradient caching (GradCache, Gao et al. 2021).

The loss needs the scores of every (query, candidate) pair of the batch at once, so its memory
grows with the number of pairs. The cached variant bounds it by the mini-batch size:

1. score all pairs in mini-batches without building a graph (recording each mini-batch's RNG
   state, so dropout can be replayed);
2. compute the loss on those detached scores and cache its gradient with respect to them;
3. when ``backward()`` reaches the returned loss, re-score each mini-batch with the same RNG
   state and back-propagate ``dot(scores_mb, cached_grad_mb)``, one mini-batch at a time.

The gradients equal those of :class:`MultipleNegativesRankingLoss` (up to float error) when the
scorer is deterministic given the RNG state. As in sentence-transformers'
``CachedMultipleNegativesRankingLoss``, the parameter gradients are produced by a hook on the
returned loss: call ``loss.backward()`` (possibly on a sum or a scaled loss), not
``torch.autograd.grad(loss, params)``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from .base import Scorer, check_scorer_output
from .softmax import MultipleNegativesRankingLoss

__all__ = ["CachedMultipleNegativesRankingLoss"]


class _RngState:
    """Snapshot of the CPU (and, if in use, CUDA) RNG, replayable without disturbing the outer state."""

    def __init__(self) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None

    @contextmanager
    def replay(self) -> Iterator[None]:
        devices = list(range(len(self.cuda))) if self.cuda else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda:
                torch.cuda.set_rng_state_all(self.cuda)
            yield


class CachedMultipleNegativesRankingLoss(MultipleNegativesRankingLoss):
    """:class:`MultipleNegativesRankingLoss` whose scorer calls are limited to ``mini_batch_size`` pairs."""

    name = "cached_mnrl"

    def __init__(
        self,
        scale: float = 10.0,
        num_negatives: int | None = 4,
        activation: str | Callable[[Tensor], Tensor] | None = "sigmoid",
        mini_batch_size: int = 32,
    ) -> None:
        super().__init__(scale=scale, num_negatives=num_negatives, activation=activation)
        if not isinstance(mini_batch_size, int) or isinstance(mini_batch_size, bool) or mini_batch_size <= 0:
            raise ValueError(f"{self.name} expects mini_batch_size to be a positive integer, but got {mini_batch_size!r}")
        self.mini_batch_size = mini_batch_size

    def forward(self, scorer: Scorer, batch: Mapping[str, Any]) -> Tensor:
        if not callable(scorer):
            raise TypeError(f"{self.name} expects a callable scorer, but got {type(scorer).__name__}")
        pairs, sizes = self.build_groups(batch)
        chunks = [pairs[b : b + self.mini_batch_size] for b in range(0, len(pairs), self.mini_batch_size)]
        grad_enabled = torch.is_grad_enabled()

        # Step 1: score every mini-batch without a graph.
        states: list[_RngState | None] = []
        outputs = []
        with torch.no_grad():
            for chunk in chunks:
                states.append(_RngState() if grad_enabled else None)
                outputs.append(check_scorer_output(self.name, scorer(chunk), len(chunk)).detach())
        flat = torch.cat(outputs)
        if not grad_enabled:
            return self.loss_from_flat(flat, sizes)

        # Step 2: the loss on detached scores, and its gradient with respect to them.
        flat.requires_grad_(True)
        loss = self.loss_from_flat(flat, sizes)
        (flat_grad,) = torch.autograd.grad(loss, flat)
        cache = list(flat_grad.split([len(chunk) for chunk in chunks]))

        # Step 3 happens in the hook, when backward() reaches the returned loss.
        result = loss.detach().requires_grad_(True)
        name = self.name

        def replay(grad_output: Tensor) -> None:
            with torch.enable_grad():
                for chunk, grad, state in zip(chunks, cache, states):
                    with state.replay():
                        scores = check_scorer_output(name, scorer(chunk), len(chunk))
                    if not scores.requires_grad:
                        continue
                    dtype = torch.promote_types(scores.dtype, grad.dtype)
                    surrogate = torch.dot(scores.to(dtype), grad.to(device=scores.device, dtype=dtype))
                    (surrogate * grad_output.to(dtype)).backward()

        result.register_hook(replay)
        return result

    @property
    def config(self) -> dict[str, Any]:
        return {**super().config, "mini_batch_size": self.mini_batch_size}

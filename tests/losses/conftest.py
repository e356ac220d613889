"""Helpers for the loss tests: a score table usable both as a crossrank scorer and, wrapped in a
stand-in CrossEncoder, by sentence-transformers' losses (the model is not under test; the loss
computation is)."""
from __future__ import annotations

import pytest
import torch
from torch import nn


class ScoreTable(nn.Module):
    """Preset logits for every (query, passage) pair; the logits are a trainable parameter."""

    def __init__(self, queries, passage_pool, seed=0, scale=2.0, dtype=torch.float32):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.index = {}
        for q in queries:
            for p in passage_pool:
                self.index.setdefault((q, p), len(self.index))
        self.logits = nn.Parameter((torch.randn(len(self.index), generator=gen, dtype=torch.float64) * scale).to(dtype))
        self.calls = []

    def ids(self, pairs):
        return torch.tensor([self.index[(q, p)] for q, p in pairs], dtype=torch.long)

    def forward(self, pairs):
        pairs = [tuple(p) for p in pairs]
        self.calls.append(pairs)
        return self.logits[self.ids(pairs)]


def make_case(lengths, seed=0, labels="graded", scale=2.0):
    """A ragged batch with unique passage strings, its labels and a ScoreTable over all pairs."""
    gen = torch.Generator().manual_seed(1000 + seed)
    queries = [f"query {i}" for i in range(len(lengths))]
    passages = [[f"passage {i}.{j}" for j in range(n)] for i, n in enumerate(lengths)]
    label_rows = []
    for n in lengths:
        if labels == "graded":  # small integers with ties
            row = torch.randint(0, 4, (n,), generator=gen).float().tolist()
        elif labels == "distinct":
            row = (torch.randperm(n, generator=gen).float() + torch.rand(n, generator=gen) * 0.5).tolist()
        elif labels == "sorted_ties":  # non-increasing, with ties
            row = sorted(torch.randint(0, 3, (n,), generator=gen).float().tolist(), reverse=True)
        elif labels == "binary":
            row = torch.randint(0, 2, (n,), generator=gen).float().tolist()
        elif labels == "teacher":
            row = (torch.randn(n, generator=gen) * 3).tolist()
        else:
            raise ValueError(labels)
        label_rows.append(row)
    pool = [p for plist in passages for p in plist]
    table = ScoreTable(queries, pool, seed=seed, scale=scale)
    batch = {"queries": queries, "passages": passages, "labels": label_rows}
    return batch, table


def st_model(table):
    """Wrap a ScoreTable as a sentence-transformers CrossEncoder stand-in (num_labels=1, CPU)."""
    from sentence_transformers.cross_encoder import CrossEncoder

    class TableCrossEncoder(CrossEncoder):
        def __init__(self, table):
            nn.Module.__init__(self)
            self.table = table

        @property
        def num_labels(self):
            return 1

        @property
        def device(self):
            return torch.device("cpu")

        def preprocess(self, pairs, prompt=None, task=None, **kwargs):
            return {"ids": self.table.ids([tuple(p) for p in pairs])}

        def forward(self, features, **kwargs):
            return {"scores": self.table.logits[features["ids"]].unsqueeze(1)}

    return TableCrossEncoder(table)


@pytest.fixture(scope="session")
def st_losses():
    return pytest.importorskip("sentence_transformers.cross_encoder.losses")


@pytest.fixture
def case():
    return make_case


@pytest.fixture
def wrap_st():
    return st_model

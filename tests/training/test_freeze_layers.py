"""freeze_layers: the embeddings and the lowest layers stay fixed; bad values are refused."""
from __future__ import annotations

import pytest

from crossrank import CrossEncoder
from crossrank.training import TrainConfig
from crossrank.training.trainer import freeze_lower_layers


def test_freezes_embeddings_and_lowest_layers_only(tiny_model_dir):
    model = CrossEncoder(tiny_model_dir).model
    total = sum(p.numel() for p in model.parameters())
    frozen = freeze_lower_layers(model, 1)
    body = model.base_model
    expected = sum(p.numel() for p in body.embeddings.parameters()) + sum(p.numel() for p in body.encoder.layer[0].parameters())
    assert frozen == expected and 0 < frozen < total
    assert not any(p.requires_grad for p in body.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in body.encoder.layer[1].parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())
    assert freeze_lower_layers(model, 1) == 0  # already frozen: nothing more


def test_bad_freeze_settings_are_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="must be below the model's 2 layers"):
        freeze_lower_layers(CrossEncoder(tiny_model_dir).model, 2)
    with pytest.raises(ValueError, match="`freeze_layers` must be an integer >= 0"):
        TrainConfig.from_dict({"model": "m", "freeze_layers": -1})


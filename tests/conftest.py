"""Shared fixtures: where the real data lives, the real MiniLM cross-encoder, a tiny random BERT."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("CROSSRANK_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = data_root()
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set CROSSRANK_DATA)")
    return root


@pytest.fixture(scope="session")
def shared_data(data_dir) -> Path:
    """The data tests' name for the same folder."""
    return data_dir


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from crossrank.model import minilm_path

    return minilm_path()


@pytest.fixture(scope="session")
def minilm_ce(minilm_dir):
    """The real MiniLM body with a new, seeded one-logit head."""
    from crossrank import CrossEncoder

    return CrossEncoder(minilm_dir, max_length=256)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, minilm_dir) -> Path:
    """A tiny random BERT sequence classifier (2 layers, hidden 32) with MiniLM's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=1,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(folder)
    return folder

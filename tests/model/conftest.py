"""What the backend tests share: toy pairs, a per-test cache for host measurements, a writable copy of the tiny model."""
from __future__ import annotations

import shutil

import pytest

TOY_PAIRS = [
    ("what is a cat", "a cat is a small domesticated carnivorous mammal"),
    ("how tall is everest", "Mount Everest is 8,849 metres high"),
    ("what is a cat", "the stock market fell today"),
    ("how tall is everest", "everest"),
] * 3


@pytest.fixture
def pairs():
    """Twelve toy (query, passage) pairs, some relevant, one a single word."""
    return list(TOY_PAIRS)


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """Host measurements go to a per-test cache, not ~/.cache."""
    monkeypatch.setenv("CROSSRANK_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def tiny_copy(tiny_model_dir, tmp_path):
    """A private copy of the tiny model: exports, conversions and records are written beside it."""
    folder = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, folder)
    return folder

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def dev600(data_dir):
    return data_dir / "msmarco-dev600"


@pytest.fixture(scope="session")
def dev600_data(dev600):
    """DataConfig settings for the dev600 train split (BM25 top-20 as candidates)."""
    return {
        "queries": str(dev600 / "queries.tsv"),
        "corpus": str(dev600 / "collection.tsv"),
        "qrels": str(dev600 / "qrels.dev.small.600q.trec"),
        "run": str(dev600 / "run.bm25.top20.trec"),
        "split": str(dev600 / "split.tsv"),
    }

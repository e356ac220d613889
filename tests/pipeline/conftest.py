"""Shared inputs of the pipeline tests: the DL19 folder and its BM25 run cut to its first queries."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def dl19(data_dir):
    return data_dir / "trec-dl19"


@pytest.fixture(scope="module")
def dl19_head(dl19, tmp_path_factory):
    """A function: n -> the DL19 BM25 run's lines of its first n queries, as a run file."""
    def cut(n_queries: int):
        lines = (dl19 / "runs" / "run.dl19.bm25.top100.trec").read_text().splitlines()
        qids = list(dict.fromkeys(line.split()[0] for line in lines))[:n_queries]
        path = tmp_path_factory.mktemp("runs") / f"bm25.{n_queries}q.trec"
        path.write_text("\n".join(line for line in lines if line.split()[0] in qids) + "\n")
        return path

    return cut


class KilledAfter:
    """A ranker that scores its first `calls` chunks with `model`, then dies as a killed job would."""

    def __init__(self, model, calls: int = 1):
        self.model, self.limit, self.calls = model, calls, 0

    def score_candidates(self, candidates, options=None):
        self.calls += 1
        if self.calls > self.limit:
            raise KeyboardInterrupt("killed")
        return self.model.score_candidates(candidates, options)

    def identity(self):
        return self.model.identity()


@pytest.fixture
def killed_after():
    """A function: (model, calls=1) -> a ranker killed after scoring `calls` chunks."""
    return KilledAfter

"""Reranking on Ray workers: the same run file as one process, retries that neither lose nor
duplicate queries, a clear error that keeps finished queries, the CLI path, the install hint.

One local Ray cluster (2 CPUs) serves the whole module. Scores are compared byte for byte with
`rerank_run` at one torch thread, the thread count each 1-CPU worker runs (CPU float sums depend
on it)."""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from pathlib import Path

import pytest
import torch

from crossrank import CrossEncoder
from crossrank.cli.main import main
from crossrank.pipeline import RerankConfig, from_run, rerank_run
from crossrank.pipeline.ray_engine import RayEngineConfig, ShardFailedError, rerank_run_ray

DEPTH = 10
CONFIG = RerankConfig(chunk_pairs=2 * DEPTH)  # two queries per scoring chunk


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    yield ray
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


def dl19_candidates(dl19, n_queries, depth):
    """The first `n_queries` queries of the DL19 BM25 run, top-`depth` each, with passage texts."""
    run = dl19 / "runs" / "run.dl19.bm25.top100.trec"
    cands = from_run(run, dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", depth)
    return [c for _, c in zip(range(n_queries), cands)]


@pytest.fixture(scope="module")
def cands(dl19):
    return dl19_candidates(dl19, 8, DEPTH)


@contextlib.contextmanager
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def single_process(model_dir, cands, path: Path, config: RerankConfig) -> str:
    with one_thread():
        rerank_run(CrossEncoder(model_dir), cands, path, config)
    return path.read_text()


@pytest.fixture(scope="module")
def reference(tiny_model_dir, cands, tmp_path_factory) -> str:
    return single_process(tiny_model_dir, cands, tmp_path_factory.mktemp("ref") / "single.trec", CONFIG)


def query_blocks(text: str) -> list[tuple[str, int]]:
    """(query id, lines) for each consecutive block of a run file's lines."""
    blocks: list[tuple[str, int]] = []
    for line in text.splitlines():
        qid = line.split()[0]
        if blocks and blocks[-1][0] == qid:
            blocks[-1] = (qid, blocks[-1][1] + 1)
        else:
            blocks.append((qid, 1))
    return blocks


class _Faulty:
    """The real model, except on a batch holding the query `query`: the worker process dies once
    (`os._exit`; the marker file remembers it) or, with `always`, the call always raises."""

    def __init__(self, model, query: str, marker: Path | None, always: bool):
        self.model, self.query, self.marker, self.always = model, query, marker, always

    def score_candidates(self, candidates, options=None):
        if self.query in [c.query for c in candidates]:
            if self.always:
                raise RuntimeError(f"cannot score {self.query!r}")
            if not self.marker.exists():
                self.marker.touch()
                os._exit(1)
        return self.model.score_candidates(candidates, options)


def faulty_model(path, query, marker=None, always=False, **kwargs):
    return _Faulty(CrossEncoder(path, **kwargs), query, marker, always)


@pytest.mark.slow
def test_two_workers_write_the_single_process_run(ray_cluster, tiny_model_dir, cands, reference, tmp_path):
    out = tmp_path / "ray.trec"
    stats = rerank_run_ray(tiny_model_dir, cands, out, CONFIG, engine=RayEngineConfig(num_workers=2))
    assert out.read_text() == reference
    assert stats.workers == 2 and stats.shards == 4 and stats.retries == 0
    assert stats.queries == 8 and stats.pairs == 8 * DEPTH and stats.skipped_queries == 0
    assert query_blocks(out.read_text()) == [(c.query_id, DEPTH) for c in cands]
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.progress"))


@pytest.mark.slow
def test_worker_dying_on_a_shard_is_replaced_and_the_shard_retried(ray_cluster, tiny_model_dir, cands, reference, tmp_path):
    victim = cands[2]  # first query of the second two-chunk shard
    marker = tmp_path / "died-once"
    factory = functools.partial(faulty_model, query=victim.query, marker=marker)
    out = tmp_path / "ray.trec"
    engine = RayEngineConfig(num_workers=2, shard_queries=4, model_factory=factory)
    stats = rerank_run_ray(tiny_model_dir, cands, out, CONFIG, engine=engine)
    assert marker.exists()  # a worker really died on that shard
    assert stats.retries == 1 and stats.replaced_workers == 1 and stats.shards == 2
    assert out.read_text() == reference
    assert query_blocks(out.read_text()) == [(c.query_id, DEPTH) for c in cands]  # every query once, in order
    assert stats.queries == 8


@pytest.mark.slow
def test_shard_out_of_retries_names_its_queries_and_keeps_earlier_ones(ray_cluster, tiny_model_dir, cands, reference, tmp_path):
    bad = cands[4]  # the third chunk: queries 4 and 5
    factory = functools.partial(faulty_model, query=bad.query, always=True)
    out = tmp_path / "ray.trec"
    engine = RayEngineConfig(num_workers=2, max_retries=1, model_factory=factory)
    with pytest.raises(ShardFailedError) as info:
        rerank_run_ray(tiny_model_dir, cands, out, CONFIG, engine=engine)
    message = str(info.value)
    assert f"queries {cands[4].query_id}, {cands[5].query_id} failed 2 time(s)" in message
    assert f"cannot score {bad.query!r}" in message
    assert info.value.query_ids == [cands[4].query_id, cands[5].query_id]
    assert not out.exists()
    partial = out.with_name(out.name + ".partial")
    assert query_blocks(partial.read_text()) == [(c.query_id, DEPTH) for c in cands[:4]]
    assert partial.read_text() == "".join(reference.splitlines(keepends=True)[: 4 * DEPTH])
    stats = rerank_run_ray(tiny_model_dir, cands, out, CONFIG, engine=RayEngineConfig(num_workers=2))
    assert stats.skipped_queries == 4 and stats.queries == 4
    assert out.read_text() == reference


@pytest.mark.slow
def test_cli_engine_ray_writes_the_single_process_run(ray_cluster, tiny_model_dir, dl19, tmp_path, capsys):
    depth = 50  # every DL19 query at depth 50: 2,150 pairs, two chunks of the default size, so two shards
    expected = single_process(tiny_model_dir, dl19_candidates(dl19, 100, depth), tmp_path / "single.trec", RerankConfig())
    first_stage = dl19 / "runs" / "run.dl19.bm25.top100.trec"
    out = tmp_path / "ray.trec"
    code = main(["rerank", "--engine", "ray", "--workers", "2", "--model", str(tiny_model_dir), "--run", str(first_stage),
                 "--corpus", str(dl19 / "collection.tsv"), "--queries", str(dl19 / "queries.dl19.tsv"),
                 "--depth", str(depth), "--output", str(out)])
    assert code == 0
    assert out.read_text() == expected
    assert len(query_blocks(expected)) == 43
    assert "reranked 43 queries (2150 pairs" in capsys.readouterr().out


def test_missing_ray_says_how_to_install(monkeypatch, tiny_model_dir, dl19, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'crossrank\[ray\]'"):
        rerank_run_ray(tiny_model_dir, [], tmp_path / "x.trec")
    out = tmp_path / "cli.trec"
    code = main(["rerank", "--engine", "ray", "--model", str(tiny_model_dir), "--run", "missing.trec",
                 "--corpus", "c.tsv", "--queries", "q.tsv", "--output", str(out)])
    assert code == 2 and "pip install 'crossrank[ray]'" in capsys.readouterr().err  # one line, no traceback
    assert not out.exists()
    code = main(["rerank", "--workers", "2", "--model", str(tiny_model_dir), "--run", "missing.trec",
                 "--corpus", "c.tsv", "--queries", "q.tsv", "--output", str(out)])
    assert code == 2 and "--engine ray" in capsys.readouterr().err


def test_engine_config_checks_its_values():
    with pytest.raises(ValueError, match="num_workers to be an integer >= 1 or None, but got 0"):
        RayEngineConfig(num_workers=0)
    with pytest.raises(ValueError, match="max_retries to be an integer >= 0, but got -1"):
        RayEngineConfig(max_retries=-1)
    with pytest.raises(ValueError, match="cpus_per_worker > 0, but got 0"):
        RayEngineConfig(cpus_per_worker=0)

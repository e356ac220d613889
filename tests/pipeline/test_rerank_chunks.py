"""Chunks of a rerank job: small first, doubling, cut by position so that a resume scores the same chunks.

A short job (300 DL19 pairs, below one full chunk of 2,048) killed after its first chunk keeps
that chunk's queries and resumes to the same bytes as an uninterrupted run.
"""
from __future__ import annotations

import pytest

from crossrank import CrossEncoder
from crossrank.data.candidates import from_run
from crossrank.pipeline import RerankConfig, rerank_run
from crossrank.pipeline.progress import RunProgress, chunk_targets, chunks


@pytest.fixture(scope="module")
def dl19_lists(dl19):
    return list(from_run(dl19 / "runs" / "run.dl19.bm25.top100.trec", dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", 100))


def test_chunk_targets_double_from_the_first_up_to_the_full_chunk():
    targets = chunk_targets(2048, 64)
    assert [next(targets) for _ in range(8)] == [64, 128, 256, 512, 1024, 2048, 2048, 2048]
    targets = chunk_targets(30)
    assert [next(targets) for _ in range(3)] == [30, 30, 30]  # no first: every chunk full
    targets = chunk_targets(30, 64)
    assert [next(targets) for _ in range(2)] == [30, 30]  # a first larger than the chunk is the chunk


def test_chunks_are_cut_by_position_so_a_resume_scores_the_same_ones(dl19_lists, tmp_path):
    assert len(dl19_lists) == 43 and all(len(c) == 100 for c in dl19_lists)
    fresh = list(chunks(dl19_lists, RunProgress(tmp_path / "a.trec"), 2048, 64))
    assert [len(c) for c in fresh] == [1, 2, 3, 6, 11, 20]  # 64 -> 1 query of 100 pairs, 128 -> 2, ... 2,048 -> 21 (20 left)
    ids = [[c.query_id for c in chunk] for chunk in fresh]
    # resumed after the first two chunks (3 queries recorded): exactly the uninterrupted run's later chunks
    progress = RunProgress(tmp_path / "b.trec")
    progress.done = {c.query_id: None for c in dl19_lists[:3]}
    assert [[c.query_id for c in chunk] for chunk in chunks(dl19_lists, progress, 2048, 64)] == ids[2:]
    # a record that ends inside a chunk (an older job's): the rest of that chunk alone, then the same chunks
    progress.done = {c.query_id: None for c in dl19_lists[:2]}
    assert [[c.query_id for c in chunk] for chunk in chunks(dl19_lists, progress, 2048, 64)] == [ids[1][1:], *ids[2:]]


@pytest.mark.parametrize("value", [0, -1, 2.5])
def test_bad_first_chunk_is_refused(value):
    with pytest.raises(ValueError, match=f"first_chunk_pairs to be an integer >= 1, but got {value!r}"):
        RerankConfig(first_chunk_pairs=value)


def test_short_job_killed_after_its_first_chunk_keeps_it_and_resumes_to_the_same_bytes(dl19_lists, tiny_model_dir, tmp_path, killed_after):
    model = CrossEncoder(tiny_model_dir, max_length=64)
    three = dl19_lists[:3]  # 300 pairs: with one chunk of 2,048, a kill anywhere kept nothing

    reference, out = tmp_path / "reference.trec", tmp_path / "killed.trec"
    rerank_run(model, three, reference, RerankConfig(show_progress=False))
    with pytest.raises(KeyboardInterrupt):
        rerank_run(killed_after(model), three, out, RerankConfig(show_progress=False))
    record = out.with_name(out.name + ".progress").read_text().splitlines()
    assert len(record) == 2 and record[1].split("\t")[0] == three[0].query_id  # the settings line and the first query
    stats = rerank_run(model, three, out, RerankConfig(show_progress=False))
    assert stats.skipped_queries == 1 and stats.queries == 2
    assert out.read_bytes() == reference.read_bytes()

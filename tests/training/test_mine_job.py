"""`crossrank.training.mine_job.mine_to_file`, the library call of `crossrank mine`, on MS MARCO dev600."""
from __future__ import annotations

import pytest

from crossrank.data import Collection, load_qrels, load_queries, load_run
from crossrank.training.datasets import load_split
from crossrank.training.example_files import iter_examples
from crossrank.training.mine_job import MineJobConfig, mine_to_file
from crossrank.training.mining import MiningConfig, mine


def job(dev600_data, output, **settings) -> MineJobConfig:
    return MineJobConfig(dev600_data["queries"], dev600_data["corpus"], dev600_data["qrels"], output,
                         run=dev600_data["run"], split=dev600_data["split"], show_progress=False, **settings)


def test_mines_the_split_from_a_run_as_mine_does(dev600_data, tmp_path):
    mining = MiningConfig(num_negatives=5, range_max=15, margin=0.5, format="tuples")
    result = mine_to_file(job(dev600_data, tmp_path / "sub" / "train.jsonl", mining=mining))

    keep = load_split(dev600_data["split"], "train")
    run = {q: docs for q, docs in load_run(dev600_data["run"]).items() if q in keep}
    expected = mine(load_queries(dev600_data["queries"]), load_qrels(dev600_data["qrels"]),
                    Collection.open(dev600_data["corpus"]), run, mining)
    written = list(iter_examples(tmp_path / "sub" / "train.jsonl"))
    assert [(e.query_id, e.doc_ids, e.targets) for e in written] == \
        [(e.query_id, e.doc_ids, e.targets) for e in expected.examples]
    assert result.examples == len(written) > 300 and {e.query_id for e in written} <= keep
    assert result.stats == expected.stats and result.source == f"run {dev600_data['run']}"
    first = result.summary().splitlines()[0]
    assert first.startswith(f"mined tuples from run {dev600_data['run']} -> {tmp_path / 'sub' / 'train.jsonl'} in ")


def test_checks_come_before_any_reading(dev600_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="split file not found"):
        mine_to_file(MineJobConfig(dev600_data["queries"], dev600_data["corpus"], dev600_data["qrels"], tmp_path / "o.jsonl",
                                   run=dev600_data["run"], split=tmp_path / "missing.tsv"))
    with pytest.raises(ValueError, match="is a directory"):
        mine_to_file(job(dev600_data, tmp_path))
    with pytest.raises(ValueError, match="no query is in split 'nope'"):
        mine_to_file(job(dev600_data, tmp_path / "o.jsonl", split_name="nope"))
    with pytest.raises(ValueError, match="--dense-batch-size must be >= 1"):
        job(dev600_data, tmp_path / "o.jsonl", dense_batch_size=0)
    assert not (tmp_path / "o.jsonl").exists()

"""`crossrank pseudo-queries` on real MS MARCO passages writes training JSONL that training reads."""
from __future__ import annotations

from crossrank.cli.main import main
from crossrank.training.example_files import iter_examples


def test_writes_teacher_labelled_examples(data_dir, tiny_model_dir, tmp_path, capsys):
    d = data_dir / "msmarco-dev600"
    out = tmp_path / "pseudo.jsonl"
    code = main(["pseudo-queries", "--corpus", str(d / "collection.tsv"), "--output", str(out), "--num-queries", "25",
                 "--num-candidates", "5", "--exclude-run", str(d / "run.bm25.top20.trec"), "--exclude-split", str(d / "split.tsv"),
                 "--teacher-dense-model", str(tiny_model_dir), "--scale", "3", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "25 pseudo-queries from" in printed and "held out" in printed and "wrote 25 examples" in printed
    examples = list(iter_examples(out))
    assert len(examples) == 25
    for e in examples:
        assert e.query_id == f"pq-{e.doc_ids[0]}" and len(e.passages) == 6
        mean = sum(e.targets) / len(e.targets)
        assert abs(mean) < 1e-4 and max(e.targets) > 0  # 3 x a z-normalised teacher score: mean 0 per list


def test_missing_corpus_is_one_clear_line(tmp_path, capsys):
    code = main(["pseudo-queries", "--corpus", str(tmp_path / "nope.tsv"), "--output", str(tmp_path / "o.jsonl")])
    assert code == 2
    assert "--corpus" in capsys.readouterr().err and not (tmp_path / "o.jsonl").exists()


def test_library_call_writes_what_it_reports_and_checks_files_first(data_dir, tiny_model_dir, tmp_path):
    import pytest

    from crossrank.training.corpus_examples import PseudoDataConfig
    from crossrank.training.pseudo_job import PseudoQueriesJob, write_pseudo_queries
    from crossrank.training.teachers import TeacherConfig

    d = data_dir / "msmarco-dev600"
    out = tmp_path / "lib.jsonl"
    data = PseudoDataConfig(str(d / "collection.tsv"), strategy="terms", num_queries=8, num_candidates=3, seed=1)
    result = write_pseudo_queries(PseudoQueriesJob(data, TeacherConfig(dense_model=str(tiny_model_dir)), str(out),
                                                   show_progress=False))
    examples = list(iter_examples(out))
    assert result.examples == len(examples) == 8 and result.output == str(out)
    # the source passage first, then at most 3 BM25 neighbours (a query of salient terms may match fewer)
    assert all(2 <= len(e.passages) <= 4 and e.query_id == f"pq-{e.doc_ids[0]}" for e in examples)
    missing = PseudoDataConfig(str(d / "collection.tsv"), exclude_run=str(tmp_path / "no.trec"))
    with pytest.raises(FileNotFoundError, match="--exclude-run .*no.trec: no such file"):
        write_pseudo_queries(PseudoQueriesJob(missing, TeacherConfig(), str(tmp_path / "never.jsonl")))
    assert not (tmp_path / "never.jsonl").exists()

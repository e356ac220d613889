"""`crossrank retrieve` end to end through crossrank.cli.main.main."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from crossrank.cli.main import main
from crossrank.data import iter_corpus, iter_queries, load_qrels, load_run
from crossrank.retrieval import BM25Config, BM25Index

CORPUS = [
    {"_id": "p1", "title": "Cats", "text": "The cat sat on the mat."},
    {"_id": "p2", "title": "", "text": "Cats chase cats and dogs, and the dogs chase cats back."},
    {"_id": "p3", "title": "Dogs", "text": "A dog barked at the mailman."},
    {"_id": "p4", "title": "Physics", "text": "Quarks and gluons interact strongly."},
    {"_id": "p5", "title": "Home", "text": "The red mat was on the floor of the room."},
]
QUERIES = [{"_id": "q1", "text": "cat on a mat"}, {"_id": "q2", "text": "dogs"}, {"_id": "q3", "text": "gluon physics"},
           {"_id": "q4", "text": "zebra"}]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    return _write_jsonl(tmp_path / "corpus.jsonl", CORPUS), _write_jsonl(tmp_path / "queries.jsonl", QUERIES)


def _retrieve(corpus, queries, output, *extra) -> int:
    return main(["retrieve", "--corpus", str(corpus), "--queries", str(queries), "--output", str(output),
                 "--no-progress", *map(str, extra)])


def test_builds_saves_and_writes_the_same_run_as_the_library(files, tmp_path):
    corpus, queries = files
    out = tmp_path / "runs" / "bm25.trec"
    assert _retrieve(corpus, queries, out, "--index", tmp_path / "index", "--k", 3) == 0
    assert BM25Index.is_index(tmp_path / "index")
    expected = BM25Index.build(iter_corpus(corpus), show_progress=False).search(
        list(iter_queries(queries)), k=3, show_progress=False)
    run = load_run(out)
    assert set(run) == {"q1", "q2", "q3"}  # q4 matches nothing: no lines
    for qid, docs in run.items():
        assert list(docs) == list(expected[qid])  # same documents, same order
        assert list(docs.values()) == pytest.approx(list(expected[qid].values()), abs=1e-4)
    lines = out.read_text().splitlines()
    assert lines[0].split()[:4] == ["q1", "Q0", "p1", "1"] and lines[0].split()[5] == "crossrank-bm25"
    assert [line.split()[3] for line in lines if line.startswith("q1 ")] == ["1", "2", "3"]


def test_reuses_a_saved_index(files, tmp_path, caplog):
    corpus, queries = files
    first, second = tmp_path / "first.trec", tmp_path / "second.trec"
    assert _retrieve(corpus, queries, first, "--index", tmp_path / "index") == 0
    # a passage added afterwards is not in the saved index: reloading, not rebuilding
    _write_jsonl(corpus, CORPUS + [{"_id": "p9", "title": "", "text": "cat cat cat mat mat"}])
    with caplog.at_level(logging.INFO):
        assert _retrieve(corpus, queries, second, "--index", tmp_path / "index", "--k1", 0.9) == 0
    assert second.read_text() == first.read_text()
    assert "reloaded" in caplog.text and "was built from" in caplog.text


def test_index_built_with_other_parameters_is_an_error(files, tmp_path, capsys):
    corpus, queries = files
    BM25Index.build(iter_corpus(corpus), BM25Config(k1=1.2, b=0.75), show_progress=False).save(tmp_path / "index")
    assert _retrieve(corpus, queries, tmp_path / "run.trec", "--index", tmp_path / "index", "--b", 0.4) == 2
    err = capsys.readouterr().err
    assert "crossrank retrieve: error:" in err and str(tmp_path / "index") in err and "b=0.75, not b=0.4" in err
    assert not (tmp_path / "run.trec").exists()
    # without --k1/--b the saved index's parameters are used
    assert _retrieve(corpus, queries, tmp_path / "run.trec", "--index", tmp_path / "index") == 0


def test_msmarco_tsv_files_and_format(tmp_path):
    corpus = tmp_path / "collection.tsv"
    corpus.write_text("".join(f"{i}\t{row['title']} {row['text']}\n" for i, row in enumerate(CORPUS)), encoding="utf-8")
    queries = tmp_path / "queries.tsv"
    queries.write_text("".join(f"{row['_id']}\t{row['text']}\n" for row in QUERIES), encoding="utf-8")
    out = tmp_path / "run.tsv"
    assert _retrieve(corpus, queries, out, "--format", "msmarco", "--k", 2, "--k1", 1.2, "--b", 0.75) == 0
    expected = BM25Index.build(iter_corpus(corpus), BM25Config(k1=1.2, b=0.75), show_progress=False).search(
        list(iter_queries(queries)), k=2, show_progress=False)
    lines = [line.split("\t") for line in out.read_text().splitlines()]
    assert lines == [[qid, pid, str(rank)] for qid, docs in expected.items() for rank, pid in enumerate(docs, 1)]
    assert lines[0] == ["q1", "0", "1"]


def test_user_errors_are_one_line_and_exit_2(files, tmp_path, capsys):
    corpus, queries = files
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("not an index")
    assert _retrieve(corpus, queries, tmp_path / "run.trec", "--index", busy) == 2
    assert "refusing to save a BM25 index to" in capsys.readouterr().err
    assert (busy / "notes.txt").read_text() == "not an index"
    assert _retrieve(tmp_path / "missing.jsonl", queries, tmp_path / "run.trec") == 2
    assert "missing.jsonl" in capsys.readouterr().err
    assert _retrieve(corpus, queries, tmp_path / "run.trec", "--k", 0) == 2
    assert "argument --k: expected an integer >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "run.trec").exists()


@pytest.mark.slow
def test_scifact_end_to_end(data_dir, tmp_path):
    from crossrank.evaluation import evaluate

    folder = data_dir / "scifact"
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"scifact not found at {folder} (set CROSSRANK_DATA)")
    test_queries = tmp_path / "test_queries.jsonl"  # the 300 test claims only
    qrels = load_qrels(folder / "qrels" / "test.tsv")
    _write_jsonl(test_queries, [{"_id": q.query_id, "text": q.text}
                                for q in iter_queries(folder / "queries.jsonl") if q.query_id in qrels])
    out = tmp_path / "scifact.bm25.trec"
    assert _retrieve(folder / "corpus.jsonl", test_queries, out, "--index", tmp_path / "index", "--k", 100) == 0
    assert evaluate(folder / "qrels" / "test.tsv", out, metrics=["nDCG@10"])["nDCG@10"] >= 0.66


def test_retrieve_command_does_not_import_torch(files, tmp_path):
    import subprocess
    import sys

    corpus, queries = files
    code = ("import sys\nfrom crossrank.cli.main import main\n"
            f"assert main(['retrieve', '--corpus', {str(corpus)!r}, '--queries', {str(queries)!r}, "
            f"'--output', {str(tmp_path / 'run.trec')!r}, '--no-progress']) == 0\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "run.trec").is_file()


def test_library_call_builds_then_reuses_the_index(files, tmp_path):
    from crossrank.retrieval.retrieve_job import RetrieveConfig, open_index, retrieve_to_file

    corpus, queries = files
    config = RetrieveConfig(corpus, queries, tmp_path / "lib.trec", index=tmp_path / "index", k=3, show_progress=False)
    result = retrieve_to_file(config)
    assert BM25Index.is_index(tmp_path / "index") and result.output == tmp_path / "lib.trec"
    run = load_run(result.output)
    assert result.passages == sum(map(len, run.values())) and set(run) == {"q1", "q2", "q3"}
    cli = tmp_path / "cli.trec"
    assert _retrieve(corpus, queries, cli, "--k", 3) == 0
    assert cli.read_text() == result.output.read_text()  # the command is this call
    reloaded = open_index(RetrieveConfig(corpus, queries, tmp_path / "unused.trec", index=tmp_path / "index", k1=0.9))
    assert reloaded.config == BM25Config() and reloaded.metadata["corpus_bytes"] == corpus.stat().st_size
    with pytest.raises(ValueError, match="was built with k1=0.9, not k1=1.5"):
        open_index(RetrieveConfig(corpus, queries, tmp_path / "unused.trec", index=tmp_path / "index", k1=1.5))
    with pytest.raises(ValueError, match="--threads must be >= 1"):
        RetrieveConfig(corpus, queries, tmp_path / "unused.trec", threads=0)


def test_cli_default_tag_is_the_library_default():
    from crossrank.cli.retrieve import DEFAULT_TAG
    from crossrank.retrieval.retrieve_job import RetrieveConfig

    assert RetrieveConfig("c", "q", "o").tag == DEFAULT_TAG

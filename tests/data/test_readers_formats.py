from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from crossrank.data import (
    FormatError,
    Passage,
    Qrel,
    Query,
    RerankItem,
    Triple,
    group_by_query,
    iter_corpus,
    iter_qrels,
    iter_queries,
    iter_rerank_jsonl,
    iter_top1000,
    iter_triples,
    load_qrels,
    load_queries,
    write_rerank_jsonl,
)


def test_data_and_evaluation_do_not_import_torch():
    code = ("import sys, crossrank.data, crossrank.evaluation, crossrank.cli.convert, crossrank.cli.evaluate, "
            "crossrank.cli.compare; bad = [m for m in ('torch', 'transformers') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- queries ---------------------------------------------------------------------------------

def test_queries_tsv_real(shared_data):
    queries = list(iter_queries(shared_data / "trec-dl19" / "queries.dl19.tsv"))
    assert len(queries) == 43
    assert queries[0] == Query("19335", "anthropological definition of environment")


def test_queries_beir_jsonl_real(shared_data):
    queries = load_queries(shared_data / "scifact" / "queries.jsonl")
    assert len(queries) == 1109
    assert queries["0"] == "0-dimensional biomaterials lack inductive properties."


def test_queries_gz_and_blank_lines(tmp_path):
    path = tmp_path / "q.tsv.gz"
    path.write_bytes(gzip.compress(b"1\tfirst\n\n007\tsecond\twith tab\n"))
    assert list(iter_queries(path)) == [Query("1", "first"), Query("007", "second\twith tab")]


def test_queries_errors_name_file_and_line(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_text("1\tok\nno tab here\n")
    with pytest.raises(FormatError, match=r"q\.tsv:2: expected 'qid<TAB>text', found no tab") as info:
        list(iter_queries(path))
    assert isinstance(info.value, ValueError) and info.value.line_number == 2
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"_id": "1", "text": "a"}\n{"text": "b"}\n')
    with pytest.raises(FormatError, match=r"q\.jsonl:2: missing key '_id'"):
        list(iter_queries(bad))
    bad.write_text('{"_id": "1", "text": "a"}\n{oops\n')
    with pytest.raises(FormatError, match=r"q\.jsonl:2: invalid JSON"):
        list(iter_queries(bad))


# --- corpus ----------------------------------------------------------------------------------

def test_corpus_tsv_and_jsonl_real(shared_data):
    first = next(iter_corpus(shared_data / "msmarco-triples100" / "collection.first89.tsv"))
    assert first.doc_id == "0" and first.title == ""
    assert first.text.startswith("The presence of communication amid scientific minds")
    passages = list(iter_corpus(shared_data / "scifact" / "corpus.jsonl"))
    assert len(passages) == 5183
    assert passages[0].doc_id == "4983"
    assert passages[0].title.startswith("Microstructural development of human newborn")


def test_corpus_jsonl_numeric_id_kept_as_string(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"_id": 12, "text": "t"}) + "\n")
    assert list(iter_corpus(path)) == [Passage("12", "t", "")]


# --- qrels -----------------------------------------------------------------------------------

def test_qrels_trec_real(shared_data):
    qrels = load_qrels(shared_data / "trec-dl19" / "qrels.dl19-passage.txt")
    assert len(qrels) == 43
    assert sum(len(d) for d in qrels.values()) == 9260
    assert qrels["19335"]["1017759"] == 0
    assert {r for d in qrels.values() for r in d.values()} == {0, 1, 2, 3}


def test_qrels_beir_real_skips_header(shared_data):
    rows = list(iter_qrels(shared_data / "scifact" / "qrels" / "test.tsv"))
    assert len(rows) == 339
    assert rows[0] == Qrel("1", "31715818", 1)


def test_qrels_two_column_means_relevant(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("1 d1\n1 d2\n")
    assert load_qrels(path) == {"1": {"d1": 1, "d2": 1}}


def test_qrels_errors(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("1 0 d1 1\n1 0 d2\n")
    with pytest.raises(FormatError, match=r"q\.txt:2: expected 4 whitespace-separated fields .* got 3"):
        list(iter_qrels(path))
    path.write_text("1 0 d1 high\n")
    with pytest.raises(FormatError, match=r"q\.txt:1: relevance must be an integer, got 'high'"):
        list(iter_qrels(path))
    path.write_text("1 0 d1 1 extra\n")
    with pytest.raises(FormatError, match=r"q\.txt:1: expected 4 fields"):
        list(iter_qrels(path))


# --- triples, top1000, rerank jsonl ----------------------------------------------------------

def test_triples_real(shared_data):
    triples = list(iter_triples(shared_data / "msmarco-triples100" / "triples.train.small.first100.tsv"))
    assert len(triples) == 100
    assert triples[0].query == "is a little caffeine ok during pregnancy"
    assert all(isinstance(t, Triple) and t.positive and t.negative for t in triples)


def test_triples_error(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("q\tpos\n")
    with pytest.raises(FormatError, match=r"t\.tsv:1: expected 3 tab-separated fields \(query positive negative\), got 2"):
        list(iter_triples(path))


def test_top1000(tmp_path):
    path = tmp_path / "top1000.dev.tsv"
    path.write_text("1\t10\twhat is x\tx is y\n1\t11\twhat is x\tz\n")
    items = list(iter_top1000(path))
    assert items == [RerankItem("1", "what is x", "10", "x is y"), RerankItem("1", "what is x", "11", "z")]
    assert items[0].score is None
    path.write_text("1\t10\twhat is x\n")
    with pytest.raises(FormatError, match=r"top1000\.dev\.tsv:1: expected 4 tab-separated fields"):
        list(iter_top1000(path))


def test_rerank_jsonl_round_trip(tmp_path):
    items = [RerankItem("q1", "query", "d1", "text é", 1.5), RerankItem("q1", "query", "d2", "t2")]
    path = tmp_path / "rerank.jsonl.gz"
    assert write_rerank_jsonl(path, items) == 2
    assert list(iter_rerank_jsonl(path)) == items
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    assert json.loads(lines[1]) == {"query_id": "q1", "query": "query", "text_id": "d2", "text": "t2"}


def test_rerank_jsonl_errors(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"query_id": "1", "query": "q", "text_id": "d", "text": "t", "score": "high"}\n')
    with pytest.raises(FormatError, match=r"r\.jsonl:1: 'score' must be a number"):
        list(iter_rerank_jsonl(path))
    path.write_text('[1, 2]\n')
    with pytest.raises(FormatError, match=r"r\.jsonl:1: expected a JSON object, got list"):
        list(iter_rerank_jsonl(path))


def test_write_rerank_jsonl_failure_leaves_nothing(tmp_path):
    def items():
        yield RerankItem("q", "q", "d", "t")
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError):
        write_rerank_jsonl(tmp_path / "out.jsonl", items())
    assert list(tmp_path.iterdir()) == []


def test_group_by_query_consecutive_runs():
    items = [RerankItem(q, "", d, "") for q, d in [("1", "a"), ("1", "b"), ("2", "c"), ("1", "d")]]
    groups = [(qid, [i.doc_id for i in group]) for qid, group in group_by_query(items)]
    assert groups == [("1", ["a", "b"]), ("2", ["c"]), ("1", ["d"])]
    assert list(group_by_query([])) == []

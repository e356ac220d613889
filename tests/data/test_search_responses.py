"""Elasticsearch / OpenSearch search responses read as a first-stage run."""
from __future__ import annotations

import json

import pytest

from crossrank.data import FormatError, iter_run, load_run, write_run


def _as_search_responses(run: dict[str, dict[str, float]], path) -> None:
    """The DL19 BM25 run written the way a search engine answers: one response body per query,
    hits by score descending, with the query id added."""
    with open(path, "w") as handle:
        for took, (qid, docs) in enumerate(run.items()):
            hits = [{"_index": "msmarco-passage", "_id": d, "_score": s, "_source": {}} for d, s in sorted(docs.items(), key=lambda kv: -kv[1])]
            body = {"query_id": qid, "took": took, "timed_out": False,
                    "hits": {"total": {"value": len(hits), "relation": "eq"}, "max_score": hits[0]["_score"], "hits": hits}}
            handle.write(json.dumps(body) + "\n")


def test_search_responses_read_like_the_trec_run_of_the_same_hits(shared_data, tmp_path):
    trec = load_run(shared_data / "trec-dl19" / "runs" / "run.dl19.bm25.top100.trec")
    responses = tmp_path / "dl19.es.jsonl"
    _as_search_responses(trec, responses)
    assert load_run(responses) == trec  # detected from the first line
    assert load_run(responses, format="search-jsonl") == trec
    # and written back as a TREC run, identical ranking to the original file's
    write_run(tmp_path / "from_es.trec", load_run(responses), tag="es")
    write_run(tmp_path / "from_trec.trec", trec, tag="es")
    assert (tmp_path / "from_es.trec").read_text() == (tmp_path / "from_trec.trec").read_text()


def test_rerank_candidates_from_search_responses(shared_data, tmp_path):
    from crossrank.pipeline import from_run

    dl19 = shared_data / "trec-dl19"
    responses = tmp_path / "dl19.es.jsonl"
    _as_search_responses(load_run(dl19 / "runs" / "run.dl19.bm25.top100.trec"), responses)
    got = list(from_run(responses, dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", depth=10))
    want = list(from_run(dl19 / "runs" / "run.dl19.bm25.top100.trec", dl19 / "collection.tsv", dl19 / "queries.dl19.tsv", depth=10))
    assert [(c.query_id, c.doc_ids, c.first_stage) for c in got] == [(c.query_id, c.doc_ids, c.first_stage) for c in want]
    assert len(got) == 43 and all(len(c) == 10 for c in got)


@pytest.mark.parametrize("line, message", [
    ('{"hits": {"hits": []}}', r"es.jsonl:2: missing key 'query_id'"),
    ('{"query_id": "q2", "hits": []}', r"es.jsonl:2: expected a search response with a 'hits.hits' list"),
    ('{"query_id": "q2", "hits": {"hits": [{"_id": "d1"}]}}', r"es.jsonl:2: hits.hits\[0\]._score must be a number, got None"),
    ('{"query_id": "q2", "hits": {"hits": [{"_id": 7, "_score": 1.0}]}}', r"es.jsonl:2: hits.hits\[0\]._id must be a non-empty string"),
    ('{"query_id": "q1", "hits": {"hits": []}}', r"es.jsonl:2: query 'q1' already had a response on an earlier line"),
    ('{"query_id": "q2", "hits": {"hits": [', r"es.jsonl:2: invalid JSON"),
])
def test_bad_search_responses_name_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "es.jsonl"
    path.write_text('{"query_id": "q1", "hits": {"hits": [{"_id": "d1", "_score": 2.0}]}}\n' + line + "\n")
    with pytest.raises(FormatError, match=message):
        list(iter_run(path))

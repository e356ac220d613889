"""Request-shape detection, parsing, answers, metrics text and config checks, without a server."""
from __future__ import annotations

import numpy as np
import pytest

from crossrank.serving import ServerConfig
from crossrank.serving.metrics import Metrics
from crossrank.serving.schemas import COHERE, INFINITY, TEI, RequestError, build_response, detect_format, parse_request

LIMITS = {"max_documents": 5, "max_text_chars": 50}


def parse(body, path="/rerank"):
    return parse_request(body, path, **LIMITS)


@pytest.mark.parametrize(
    ("body", "path", "fmt"),
    [
        ({"query": "q", "documents": ["a"]}, "/rerank", COHERE),
        ({"query": "q", "documents": ["a"], "top_n": 1, "return_documents": True}, "/v1/rerank", COHERE),
        ({"query": "q", "documents": [{"text": "a"}]}, "/v2/rerank", COHERE),
        ({"query": "q", "documents": ["a"], "raw_scores": False}, "/rerank", INFINITY),
        ({"query": "q", "documents": ["a"]}, "/infinity/rerank", INFINITY),
        ({"query": "q", "texts": ["a"]}, "/rerank", TEI),
        ({"query": "q", "texts": ["a"], "raw_scores": True}, "/v1/rerank", TEI),
    ],
)
def test_detect_format(body, path, fmt):
    assert detect_format(body, path) == fmt
    assert parse(body, path).format == fmt


def test_parse_cohere_fields():
    req = parse({"model": "m", "query": "q", "documents": ["a", {"text": "b"}], "top_n": 1, "return_documents": True,
                 "max_tokens_per_doc": 7, "rank_fields": ["text"]}, "/v2/rerank")
    assert (req.documents, req.top_n, req.return_documents, req.max_tokens_per_doc, req.api_version, req.model) == (
        ["a", "b"], 1, True, 7, "2", "m")
    assert not req.raw_scores
    # nulls mean "not given" (SDKs send them)
    req = parse({"query": "q", "documents": ["a"], "top_n": None, "return_documents": None, "max_tokens_per_doc": None})
    assert (req.top_n, req.return_documents, req.max_tokens_per_doc, req.api_version) == (None, False, None, "1")


def test_parse_tei_fields():
    req = parse({"query": "q", "texts": ["a", "b"], "raw_scores": True, "return_text": True, "truncate": False})
    assert (req.documents, req.raw_scores, req.return_documents, req.truncate) == (["a", "b"], True, True, False)
    assert parse({"query": "q", "texts": ["a"]}).truncate is True


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([1, 2], "JSON object"),
        ({"documents": ["a"]}, "`query` must be a string, but got null"),
        ({"query": 3, "documents": ["a"]}, "`query` must be a string, but got a number"),
        ({"query": "  ", "documents": ["a"]}, "`query` must not be empty"),
        ({"query": "q" * 51, "documents": ["a"]}, "`query` has 51 characters; the limit is 50"),
        ({"query": "q"}, "`documents` is required"),
        ({"query": "q", "documents": "a"}, "`documents` must be a list, but got a string"),
        ({"query": "q", "documents": []}, "`documents` must not be empty"),
        ({"query": "q", "documents": ["a"] * 6}, "6 items; the limit is 5"),
        ({"query": "q", "documents": ["a", 5]}, "`documents[1]` must be a string or an object"),
        ({"query": "q", "documents": [{"title": "a"}]}, "without a string `text`"),
        ({"query": "q", "documents": ["a", "d" * 51]}, "`documents[1]` has 51 characters"),
        ({"query": "q", "documents": ["a"], "top_n": 0}, "`top_n` must be >= 1"),
        ({"query": "q", "documents": ["a"], "top_n": "3"}, "`top_n` must be an integer, but got a string"),
        ({"query": "q", "documents": ["a"], "top_n": True}, "`top_n` must be an integer, but got a boolean"),
        ({"query": "q", "documents": ["a"], "return_documents": "yes"}, "`return_documents` must be a boolean"),
        ({"query": "q", "documents": ["a"], "max_tokens_per_doc": 0}, "`max_tokens_per_doc` must be >= 1"),
        ({"query": "q", "documents": ["a"], "raw_scores": 1}, "`raw_scores` must be a boolean"),
        ({"query": "q", "documents": [{"text": "a"}], "raw_scores": True}, "`documents[0]` must be a string, but got an object"),
        ({"query": "q", "texts": ["a"], "documents": ["a"]}, "not both"),
        ({"query": "q", "texts": [{"text": "a"}]}, "`texts[0]` must be a string"),
        ({"query": "q", "texts": ["a"], "truncate": "no"}, "`truncate` must be a boolean"),
        ({"query": "q", "texts": ["a"], "truncation_direction": "Left"}, "not supported"),
    ],
)
def test_parse_errors(body, fragment):
    with pytest.raises(RequestError) as info:
        parse(body)
    assert info.value.status == 400
    assert info.value.error == "invalid_request"
    assert fragment in info.value.detail
    assert info.value.body() == {"error": "invalid_request", "detail": info.value.detail}


def test_build_response_shapes():
    scores = np.array([0.2, 0.9, 0.2, 0.5], dtype=np.float32)
    docs = ["a", "b", "c", "d"]
    cohere = build_response(parse({"query": "q", "documents": docs, "top_n": 3, "return_documents": True}, "/v2/rerank"), scores, 12, "mini")
    assert [r["index"] for r in cohere["results"]] == [1, 3, 0]  # best first; the tie keeps input order
    assert cohere["results"][0] == {"index": 1, "relevance_score": pytest.approx(0.9), "document": {"text": "b"}}
    assert cohere["meta"]["api_version"] == {"version": "2"} and cohere["usage"] == {"total_tokens": 12}
    assert cohere["model"] == "mini" and isinstance(cohere["id"], str)

    plain = build_response(parse({"query": "q", "documents": docs}), scores, 12, "mini")
    assert [r["index"] for r in plain["results"]] == [1, 3, 0, 2]
    assert all("document" not in r for r in plain["results"]) and plain["meta"]["api_version"] == {"version": "1"}

    infinity = build_response(parse({"query": "q", "documents": docs, "raw_scores": False, "return_documents": True, "top_n": 2}), scores, 12, "mini")
    assert infinity["object"] == "rerank" and infinity["usage"] == {"prompt_tokens": 12, "total_tokens": 12}
    assert infinity["results"] == [{"relevance_score": pytest.approx(0.9), "index": 1, "document": "b"},
                                   {"relevance_score": pytest.approx(0.5), "index": 3, "document": "d"}]
    assert {"id", "created", "model"} <= set(infinity)

    tei = build_response(parse({"query": "q", "texts": docs, "return_text": True}), scores, 12, "mini")
    assert tei == [{"index": 1, "score": pytest.approx(0.9), "text": "b"}, {"index": 3, "score": pytest.approx(0.5), "text": "d"},
                   {"index": 0, "score": pytest.approx(0.2), "text": "a"}, {"index": 2, "score": pytest.approx(0.2), "text": "c"}]
    assert "text" not in build_response(parse({"query": "q", "texts": docs}), scores, 12, "m")[0]


def test_metrics_text():
    m = Metrics()
    m.observe_request("/rerank", "POST", 200, 0.02)
    m.observe_request("/rerank", "POST", 400, 0.001)
    m.observe_error("invalid_request")
    m.observe_batch(pairs=40, pieces=3)
    m.add_queue_depth(2)
    text = m.render()
    assert 'crossrank_requests_total{endpoint="/rerank",method="POST",status="200"} 1' in text
    assert 'crossrank_request_errors_total{error="invalid_request"} 1' in text
    assert 'crossrank_request_duration_seconds_bucket{le="0.025"} 2' in text
    assert 'crossrank_request_duration_seconds_bucket{le="+Inf"} 2' in text
    assert "crossrank_request_duration_seconds_count 2" in text
    assert 'crossrank_batch_pairs_bucket{le="32.0"} 0' in text and 'crossrank_batch_pairs_bucket{le="64.0"} 1' in text
    assert "crossrank_batch_requests_sum 3.0" in text
    assert "crossrank_pairs_scored_total 40" in text and "crossrank_queue_depth 2" in text
    assert "# TYPE crossrank_request_duration_seconds histogram" in text


@pytest.mark.parametrize("bad", [{"max_documents": 0}, {"max_queue": -1}, {"timeout_s": 0}, {"batch_wait_ms": -1},
                                 {"api_key": " "}, {"port": 70000}, {"max_batch_tokens": 1.5}])
def test_config_checks(bad):
    with pytest.raises(ValueError):
        ServerConfig(**bad)


def test_config_batch_tokens_default_by_device():
    assert ServerConfig().batch_tokens_for("cpu") == 4096
    assert ServerConfig().batch_tokens_for("cuda:0") == 32768
    assert ServerConfig(max_batch_tokens=100).batch_tokens_for("cuda") == 100


def test_config_redacts_key():
    assert ServerConfig(api_key="secret").to_dict()["api_key"] == "***"

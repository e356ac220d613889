"""Every request shape against a real server (uvicorn on 127.0.0.1, a real model); scores equal predict."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

QUERY = "what is the capital of france"
DOCS = [
    "Paris is the capital and largest city of France.",
    "Berlin is the capital of Germany.",
    "The Eiffel Tower is in Paris. " * 40,  # long: cut by the model's max_length
    "",
    "France borders Spain, Italy, Germany and Belgium.",
]


def expected(model, docs=DOCS, query=QUERY, raw=False):
    return model.predict([(query, d) for d in docs], activation="identity" if raw else "sigmoid")


def check_ranked(results, scores, index_key="index", score_key="relevance_score", top_n=None):
    """Results best first, each with predict's score for its index; the top_n are the best ones.

    Batches padded differently move scores in the last float digits, so near-ties may swap.
    """
    index = np.array([r[index_key] for r in results])
    got = np.array([r[score_key] for r in results])
    assert len(index) == min(top_n or len(scores), len(scores)) and len(set(index.tolist())) == len(index)
    np.testing.assert_allclose(got, scores[index], rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(got) <= 0)
    left_out = np.setdiff1d(np.arange(len(scores)), index)
    if len(left_out):
        assert scores[index].min() >= scores[left_out].max() - 1e-6


@pytest.mark.parametrize("path", ["/rerank", "/v1/rerank", "/v2/rerank"])
def test_cohere_shape(client, tiny_ce, path):
    r = client.post(path, json={"model": "any", "query": QUERY, "documents": DOCS})
    assert r.status_code == 200, r.text
    body = r.json()
    check_ranked(body["results"], expected(tiny_ce))
    assert all(set(item) == {"index", "relevance_score"} for item in body["results"])
    assert body["meta"]["api_version"]["version"] == ("2" if path == "/v2/rerank" else "1")
    assert body["meta"]["tokens"]["input_tokens"] == body["usage"]["total_tokens"] > 0
    assert body["model"] == "any" and body["id"]


def test_cohere_top_n_and_documents_as_objects(client, tiny_ce):
    """Jina and Cohere also send {"text": ...} documents; top_n larger than the list returns all."""
    r = client.post("/v1/rerank", json={"query": QUERY, "documents": [{"text": d} for d in DOCS], "top_n": 2, "return_documents": True})
    body = r.json()
    check_ranked(body["results"], expected(tiny_ce), top_n=2)
    assert [item["document"] for item in body["results"]] == [{"text": DOCS[item["index"]]} for item in body["results"]]
    assert len(client.post("/rerank", json={"query": QUERY, "documents": DOCS, "top_n": 99}).json()["results"]) == len(DOCS)


@pytest.mark.parametrize(("path", "extra"), [("/rerank", {"raw_scores": False}), ("/v1/rerank", {"raw_scores": True}),
                                             ("/infinity/rerank", {})])
def test_infinity_shape(client, tiny_ce, path, extra):
    r = client.post(path, json={"model": "m", "query": QUERY, "documents": DOCS, "return_documents": True, "top_n": 4, **extra})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "rerank" and body["model"] == "m"
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0
    assert body["id"] and isinstance(body["created"], int)
    check_ranked(body["results"], expected(tiny_ce, raw=extra.get("raw_scores", False)), top_n=4)
    assert [item["document"] for item in body["results"]] == [DOCS[item["index"]] for item in body["results"]]
    plain = client.post(path, json={"query": QUERY, "documents": DOCS, **extra}).json()
    assert all(item["document"] is None for item in plain["results"])


@pytest.mark.parametrize("raw", [False, True])
def test_tei_shape(client, tiny_ce, raw):
    r = client.post("/rerank", json={"query": QUERY, "texts": DOCS, "raw_scores": raw, "return_text": True, "truncate": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, list)
    check_ranked(body, expected(tiny_ce, raw=raw), score_key="score")
    assert [item["text"] for item in body] == [DOCS[item["index"]] for item in body]
    assert all(set(item) == {"index", "score"} for item in client.post("/rerank", json={"query": QUERY, "texts": DOCS}).json())


def test_max_tokens_per_doc(client, tiny_ce):
    """Each document is cut to max_tokens_per_doc tokens before scoring (these words are one token each)."""
    words = "the river flows past the old stone bridge near the town square".split()
    docs = [" ".join(words), " ".join(words[:5]), " ".join(reversed(words))]
    r = client.post("/v2/rerank", json={"query": QUERY, "documents": docs, "max_tokens_per_doc": 4, "return_documents": True})
    body = r.json()
    cut = [" ".join(d.split()[:4]) for d in docs]
    check_ranked(body["results"], expected(tiny_ce, cut))
    assert {item["document"]["text"] for item in body["results"]} == set(docs)  # the documents as sent come back
    n_query = len(tiny_ce.tokenizer(QUERY, add_special_tokens=False)["input_ids"])
    assert body["usage"]["total_tokens"] == 3 * (n_query + 4 + 3)  # [CLS] q [SEP] d [SEP]
    uncut = client.post("/v2/rerank", json={"query": QUERY, "documents": docs}).json()
    assert uncut["usage"]["total_tokens"] > body["usage"]["total_tokens"]


def test_large_request_is_split(start_server, tiny_ce, metric):
    """Far more than 32 documents, split internally into pieces of at most max_batch_tokens."""
    server = start_server(tiny_ce, max_batch_tokens=300)
    rng = np.random.default_rng(0)
    vocab = "apple river stone bridge music light paper cloud garden engine window silver".split()
    docs = [" ".join(rng.choice(vocab, size=rng.integers(3, 30))) for _ in range(400)]
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/rerank", json={"query": QUERY, "documents": docs})
        assert r.status_code == 200, r.text
        check_ranked(r.json()["results"], expected(tiny_ce, docs))
        text = c.get("/metrics").text
    assert metric(text, "crossrank_pairs_scored_total") == 400
    assert metric(text, "crossrank_batch_pairs_count") >= 400 * 10 / 300  # at least tokens / budget model calls
    assert metric(text, "crossrank_queue_depth") == 0


def test_concurrent_requests_are_merged(start_server, gated, tiny_ce, metric):
    """Requests that arrive while the worker is busy are scored together in one model call."""
    server = start_server(gated, batch_wait_ms=20)
    gated.gate.clear()

    def call(i):
        with httpx.Client(base_url=server.url, timeout=30) as c:
            return c.post("/rerank", json={"query": f"{QUERY} {i}", "documents": DOCS})

    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(call, 0)
        assert gated.entered.wait(10)
        rest = [pool.submit(call, i) for i in range(1, 6)]
        with httpx.Client(base_url=server.url) as c:  # wait until the five are queued
            for _ in range(500):
                if metric(c.get("/metrics").text, "crossrank_queue_depth") == 6:
                    break
                time.sleep(0.01)
        gated.gate.set()
        responses = [first.result()] + [f.result() for f in rest]
    assert gated.calls == [len(DOCS), 5 * len(DOCS)]
    for i, r in enumerate(responses):
        check_ranked(r.json()["results"], expected(tiny_ce, query=f"{QUERY} {i}"))


def test_health_info_metrics_openapi(client, metric):
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/info").json()
    assert info["max_length"] > 0 and info["config"]["max_documents"] == 1000 and info["config"]["api_key"] is None
    assert info["max_batch_tokens"] == 4096  # the CPU default
    client.post("/rerank", json={"query": QUERY, "documents": DOCS})
    client.post("/rerank", json={"query": "", "documents": DOCS})
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert metric(text, 'crossrank_requests_total{endpoint="/rerank",method="POST",status="200"}') >= 1
    assert metric(text, 'crossrank_request_errors_total{error="invalid_request"}') >= 1
    assert metric(text, "crossrank_request_duration_seconds_count") >= 2
    assert metric(text, "crossrank_batch_pairs_count") >= 1
    assert "crossrank_queue_depth 0" in text
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.") and {"/rerank", "/v1/rerank", "/v2/rerank", "/health", "/metrics"} <= set(spec["paths"])
    assert "CohereRerankRequest" in spec["components"]["schemas"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text


def test_cohere_sdk(start_server, tiny_ce):
    """The official Cohere SDK, pointed at the server by base_url, sends its key and parses the answers."""
    cohere = pytest.importorskip("cohere")
    server = start_server(tiny_ce, api_key="sdk-secret")
    scores = expected(tiny_ce)
    v2 = cohere.ClientV2(base_url=server.url, api_key="sdk-secret").rerank(model="crossrank", query=QUERY, documents=DOCS, top_n=3)
    check_ranked([{"index": r.index, "relevance_score": r.relevance_score} for r in v2.results], scores, top_n=3)
    assert v2.meta.api_version.version == "2"
    v1 = cohere.Client(base_url=server.url, api_key="sdk-secret").rerank(
        model="crossrank", query=QUERY, documents=DOCS, top_n=2, return_documents=True)
    check_ranked([{"index": r.index, "relevance_score": r.relevance_score} for r in v1.results], scores, top_n=2)
    assert [r.document.text for r in v1.results] == [DOCS[r.index] for r in v1.results]
    with pytest.raises(Exception) as info:  # a wrong key is refused
        cohere.ClientV2(base_url=server.url, api_key="wrong").rerank(model="crossrank", query=QUERY, documents=DOCS)
    assert getattr(info.value, "status_code", None) == 401


def test_real_minilm_saved_by_crossrank(start_server, minilm_ce, tmp_path):
    """The real MiniLM cross-encoder, saved and reloaded by crossrank, served; scores equal predict."""
    from crossrank import CrossEncoder

    model = CrossEncoder(minilm_ce.save(tmp_path / "minilm-ce"), device="cpu")
    server = start_server(model, model_name="minilm")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        body = c.post("/v2/rerank", json={"query": QUERY, "documents": DOCS}).json()
        tei = c.post("/rerank", content=json.dumps({"query": QUERY, "texts": DOCS, "raw_scores": True})).json()
    check_ranked(body["results"], expected(model))
    check_ranked(tei, expected(model, raw=True), score_key="score")
    assert body["model"] == "minilm"

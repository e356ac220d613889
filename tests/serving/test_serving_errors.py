"""Bad input, limits, a full queue, timeouts, model failures and the API key, against a real server."""
from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

DOCS = ["Paris is the capital of France.", "Berlin is the capital of Germany."]


@pytest.fixture(scope="module")
def limited(start_server, tiny_ce):
    return start_server(tiny_ce, max_documents=3, max_text_chars=200, max_body_bytes=2000)


def post(server, body, path="/rerank", **kwargs):
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        return c.post(path, content=content, headers={"content-type": "application/json"}, **kwargs)


def check_error(r, status, error, fragment=""):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"} and body["error"] == error, body
    assert fragment in body["detail"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"query": "", "documents": DOCS}, "`query` must not be empty"),
        ({"query": "q", "documents": []}, "`documents` must not be empty"),
        ({"query": "q"}, "`documents` is required"),
        ({"query": "q", "texts": []}, "`texts` must not be empty"),
        ({"query": "q", "documents": DOCS * 2}, "4 items; the limit is 3"),
        ({"query": "q" * 201, "documents": DOCS}, "`query` has 201 characters; the limit is 200"),
        ({"query": "q", "documents": ["x" * 201]}, "`documents[0]` has 201 characters"),
        ({"query": ["q"], "documents": DOCS}, "`query` must be a string, but got a list"),
        ({"query": "q", "documents": [1, 2]}, "`documents[0]` must be a string"),
        ({"query": "q", "documents": DOCS, "top_n": "2"}, "`top_n` must be an integer"),
        ({"query": "q", "texts": DOCS, "raw_scores": "yes"}, "`raw_scores` must be a boolean"),
        ("[1, 2]", "JSON object"),
        ('{"query": "q\\ud800", "documents": ["a"]}', "`query` holds a lone surrogate (U+D800 at character 1)"),
        ('{"query": "q", "documents": ["a", {"text": "b\\udfff"}]}', "`documents[1]` holds a lone surrogate"),
    ],
)
def test_invalid_requests(limited, body, fragment):
    check_error(post(limited, body), 400, "invalid_request", fragment)


def test_invalid_json(limited):
    check_error(post(limited, b'{"query": "q", '), 400, "invalid_json", "not valid JSON")
    check_error(post(limited, b"\xff\xfe"), 400, "invalid_json")


def test_body_too_large(limited):
    big = {"query": "q", "documents": ["x" * 150] * 3, "pad": "y" * 3000}
    check_error(post(limited, big), 413, "body_too_large", "the limit is 2000")

    def chunks():  # no Content-Length: counted while streaming
        data = json.dumps(big).encode()
        for i in range(0, len(data), 500):
            yield data[i : i + 500]

    with httpx.Client(base_url=limited.url, timeout=30) as c:
        check_error(c.post("/rerank", content=chunks()), 413, "body_too_large")
        assert c.post("/rerank", json={"query": "q", "documents": DOCS}).status_code == 200  # still serving


def test_tei_truncate_false_refuses_long_pairs(start_server, tiny_ce):
    server = start_server(tiny_ce)
    long_text = "word " * (tiny_ce.max_length + 10)
    check_error(post(server, {"query": "q", "texts": ["short", long_text], "truncate": False}), 413, "input_too_long", "texts[1]")
    assert post(server, {"query": "q", "texts": ["short", long_text], "truncate": True}).status_code == 200
    assert post(server, {"query": "q", "texts": ["short", long_text]}).status_code == 200  # cut by default


def test_unknown_path_and_method(limited):
    with httpx.Client(base_url=limited.url) as c:
        check_error(c.get("/nowhere"), 404, "not_found")
        check_error(c.get("/rerank"), 405, "method_not_allowed")
        check_error(c.post("/health"), 405, "method_not_allowed")


def test_queue_full_answers_429(start_server, gated):
    server = start_server(gated, max_queue=1)
    gated.gate.clear()
    result = {}
    first = threading.Thread(target=lambda: result.update(r=post(server, {"query": "q", "documents": DOCS})))
    first.start()
    assert gated.entered.wait(10)
    r = post(server, {"query": "q", "documents": DOCS})
    check_error(r, 429, "queue_full", "max_queue=1")
    assert r.headers["retry-after"] == "1"
    gated.gate.set()
    first.join(30)
    assert result["r"].status_code == 200
    assert post(server, {"query": "q", "documents": DOCS}).status_code == 200


def test_timeout_answers_504(start_server, gated, metric):
    server = start_server(gated, timeout_s=0.3)
    gated.gate.clear()
    start = time.perf_counter()
    check_error(post(server, {"query": "q", "documents": DOCS}), 504, "timeout", "timeout_s=0.3")
    assert time.perf_counter() - start < 5
    gated.gate.set()
    assert post(server, {"query": "q", "documents": DOCS}).status_code == 200
    with httpx.Client(base_url=server.url) as c:
        text = c.get("/metrics").text
    assert metric(text, 'crossrank_request_errors_total{error="timeout"}') == 1
    assert metric(text, "crossrank_queue_depth") == 0


def test_model_failure_answers_500_and_server_lives_on(start_server, gated):
    server = start_server(gated)
    gated.fail = RuntimeError("out of memory")
    r = post(server, {"query": "q", "documents": DOCS})
    check_error(r, 500, "internal_error", "the server log has the cause")
    assert "out of memory" not in r.text and "RuntimeError" not in r.text  # internal messages stay in the log
    gated.fail = None
    assert post(server, {"query": "q", "documents": DOCS}).status_code == 200


def test_api_key(start_server, tiny_ce, metric):
    server = start_server(tiny_ce, api_key="s3cret")
    good = {"Authorization": "Bearer s3cret"}
    body = {"query": "q", "documents": DOCS}
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for method, path in [("POST", "/rerank"), ("POST", "/v1/rerank"), ("POST", "/v2/rerank"), ("POST", "/infinity/rerank"),
                             ("GET", "/metrics"), ("GET", "/info"), ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/nowhere")]:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}, {"Authorization": "Basic s3cret"}):
                r = c.request(method, path, json=body if method == "POST" else None, headers=headers)
                check_error(r, 401, "unauthorized", "Authorization: Bearer")
                assert r.headers["www-authenticate"] == "Bearer"
        assert c.get("/health").status_code == 200  # open, for load balancers
        assert c.post("/rerank", json=body, headers=good).status_code == 200
        assert c.post("/v2/rerank", json=body, headers={"authorization": "bearer s3cret"}).status_code == 200
        assert c.get("/metrics", headers=good).status_code == 200
        assert metric(c.get("/metrics", headers=good).text, 'crossrank_request_errors_total{error="unauthorized"}') == 36

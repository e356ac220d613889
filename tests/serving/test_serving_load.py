"""`crossrank serve` (a subprocess) with the real MiniLM cross-encoder under 8 concurrent clients on
loopback: every answer is right (the same top documents and scores as offline `predict` on the
same request), none fails, and /metrics counts every request and pair and shows that the server
merged concurrent requests into shared batches. Throughput and latency are measured by
benchmarks/bench_serving.py, not asserted here (timings depend on the host).
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_serving import free_port, histogram_mean, make_requests, start_server  # noqa: E402

pytestmark = pytest.mark.slow

CLIENTS = 8
DOCS = 12
REQUESTS = 48


async def post_all(url: str, bodies: list[bytes]) -> list:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=120) as c:
        sem = asyncio.Semaphore(CLIENTS)

        async def one(body: bytes):
            async with sem:
                return await c.post("/v2/rerank", content=body, headers={"content-type": "application/json"})

        return await asyncio.gather(*(one(b) for b in bodies))


def test_concurrent_requests_get_offline_answers(minilm_ce, tmp_path, metric):
    import httpx

    from crossrank import CrossEncoder

    model_dir = minilm_ce.save(tmp_path / "minilm-ce")
    requests = make_requests(REQUESTS, DOCS, seed=1)
    model = CrossEncoder(model_dir, device="cpu")
    expected = [model.predict([(r["query"], d) for d in r["documents"]], activation="sigmoid", show_progress_bar=False)
                for r in requests]

    port = free_port()
    with open(tmp_path / "server.log", "w") as log:
        proc = start_server(str(model_dir), port, log)
        url = f"http://127.0.0.1:{port}"
        try:
            answers = asyncio.run(post_all(url, [json.dumps(r).encode() for r in requests]))
            metrics_text = httpx.get(f"{url}/metrics").text
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    failed = [(i, a.status_code, a.text[:200]) for i, a in enumerate(answers) if a.status_code != 200]
    assert not failed, failed[:5]
    for request, answer, scores in zip(requests, answers, expected):
        results = answer.json()["results"]
        assert [r["index"] for r in results] == list(np.argsort(-scores, kind="stable")[: request["top_n"]])
        np.testing.assert_allclose([r["relevance_score"] for r in results], np.sort(scores)[::-1][:5], rtol=1e-4, atol=1e-5)
    assert "crossrank_request_errors_total{" not in metrics_text
    assert metric(metrics_text, 'crossrank_requests_total{endpoint="/v2/rerank",method="POST",status="200"}') == REQUESTS
    assert metric(metrics_text, "crossrank_pairs_scored_total") == REQUESTS * DOCS
    assert metric(metrics_text, "crossrank_queue_depth") == 0
    # 8 clients in flight at once: the micro-batcher merged requests, so batches hold more than one request's pairs
    assert histogram_mean(metrics_text, "crossrank_batch_pairs") > DOCS

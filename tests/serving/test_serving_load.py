"""A bounded load test: `crossrank serve` (a subprocess) with the real MiniLM cross-encoder under
8 concurrent clients for about 10 s on loopback. Reports throughput and p50/p99 latency; asserts no
failed request and a throughput of at least 70% of offline `predict` on the same kind of pairs.
"""
from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.slow

CLIENTS = 8
DOCS_PER_REQUEST = 12
DURATION_S = 10.0
VOCAB = ("the river city music light paper cloud garden engine window silver history science people water energy "
         "market health school system world house power money family government country company bridge station").split()


def make_requests(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        query = " ".join(rng.choice(VOCAB, size=6))
        docs = [" ".join(rng.choice(VOCAB, size=int(rng.integers(20, 60)))) for _ in range(DOCS_PER_REQUEST)]
        out.append({"model": "minilm", "query": query, "documents": docs, "top_n": 5})
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run_load(url: str, bodies: list[bytes], duration: float):
    latencies: list[float] = []
    failures: list[str] = []
    pairs = 0
    deadline = time.perf_counter() + duration

    async def client(k: int):
        nonlocal pairs
        async with httpx.AsyncClient(base_url=url, timeout=120) as c:
            i = k
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    r = await c.post("/v2/rerank", content=bodies[i % len(bodies)], headers={"content-type": "application/json"})
                    if r.status_code != 200 or len(r.json()["results"]) != 5:
                        failures.append(f"{r.status_code}: {r.text[:200]}")
                    else:
                        pairs += DOCS_PER_REQUEST
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                latencies.append(time.perf_counter() - start)
                i += CLIENTS

    start = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(CLIENTS)))
    return pairs, time.perf_counter() - start, latencies, failures


def test_load_throughput_latency(minilm_ce, tmp_path, capsys):
    from crossrank import CrossEncoder

    model_dir = minilm_ce.save(tmp_path / "minilm-ce")
    requests = make_requests(200)
    bodies = [json.dumps(r).encode() for r in requests]

    # offline predict on pairs of the same requests, measured while no server runs, before and
    # after the load (the mean evens out other jobs on a shared host)
    model = CrossEncoder(model_dir, device="cpu")
    sample = [(r["query"], d) for r in requests[:8] for d in r["documents"]]
    model.predict(sample[:32], batch_size=32)  # warm-up

    def offline_rate() -> float:
        start = time.perf_counter()
        model.predict(sample, batch_size=32)
        return len(sample) / (time.perf_counter() - start)

    offline_before = offline_rate()

    port = free_port()
    log = open(tmp_path / "server.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "crossrank.cli.main", "serve", "--model", str(model_dir), "--port", str(port), "--device", "cpu"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"crossrank serve exited: {(tmp_path / 'server.log').read_text()[-2000:]}"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "crossrank serve did not start in 120 s"
            time.sleep(0.2)
        # warm-up, and the scores are predict's
        first = httpx.post(f"{url}/v2/rerank", content=bodies[0], timeout=60).json()
        expected = model.predict([(requests[0]["query"], d) for d in requests[0]["documents"]], activation="sigmoid")
        got = {r["index"]: r["relevance_score"] for r in first["results"]}
        np.testing.assert_allclose(list(got.values()), expected[list(got)], rtol=1e-5, atol=1e-6)

        pairs, elapsed, latencies, failures = asyncio.run(run_load(url, bodies, DURATION_S))
        metrics_text = httpx.get(f"{url}/metrics").text
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    offline = (offline_before + offline_rate()) / 2

    served = pairs / elapsed
    p50, p99 = np.percentile(latencies, [50, 99])
    with capsys.disabled():
        print(f"\n[serve load] {CLIENTS} clients x {DOCS_PER_REQUEST} docs, {len(latencies)} requests in {elapsed:.1f} s: "
              f"{served:.1f} pairs/s served vs {offline:.1f} pairs/s offline predict ({served / offline:.0%}); "
              f"latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms; failed {len(failures)}")
    assert not failures, failures[:5]
    assert "crossrank_request_errors_total{" not in metrics_text
    assert served >= 0.7 * offline, f"served {served:.1f} pairs/s < 70% of offline {offline:.1f} pairs/s"

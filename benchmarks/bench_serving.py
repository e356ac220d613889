"""Serving under load: `crossrank serve` (a subprocess) against offline `predict` on the same pairs.

    python benchmarks/bench_serving.py --model MODEL [--clients 8] [--docs 12] [--seconds 20]

Starts the server on loopback, warms it up, then runs `--clients` concurrent clients posting
Cohere-style /v2/rerank requests (`--docs` documents each) for `--seconds`. Offline `predict` on
pairs of the same requests is timed before and after the load, with no server running, and the mean
is the reference. Prints served pairs/s, its share of offline pairs/s, latency p50/p99, failed
requests, and the batches the server formed (from /metrics); writes a "serving" section to
RESULTS.md. One process at a time on a shared host: other heavy jobs distort the ratio.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import host, replace_section  # noqa: E402

VOCAB = ("the river city music light paper cloud garden engine window silver history science people water energy "
         "market health school system world house power money family government country company bridge station").split()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="cross-encoder folder")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--docs", type=int, default=12, help="documents per request (default 12)")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the load (default 20)")
    p.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    return p.parse_args(argv)


def make_requests(n: int, docs: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"model": "bench", "query": " ".join(rng.choice(VOCAB, size=6)), "top_n": 5,
             "documents": [" ".join(rng.choice(VOCAB, size=int(rng.integers(20, 60)))) for _ in range(docs)]}
            for _ in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run_load(url: str, bodies: list[bytes], clients: int, docs: int, seconds: float):
    import httpx

    latencies: list[float] = []
    failures: list[str] = []
    pairs = 0
    deadline = time.perf_counter() + seconds

    async def client(k: int):
        nonlocal pairs
        async with httpx.AsyncClient(base_url=url, timeout=120) as c:
            i = k
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    r = await c.post("/v2/rerank", content=bodies[i % len(bodies)], headers={"content-type": "application/json"})
                    if r.status_code == 200:
                        pairs += docs
                    else:
                        failures.append(f"{r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                latencies.append(time.perf_counter() - start)
                i += clients

    start = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    return pairs, time.perf_counter() - start, latencies, failures


def histogram_mean(metrics_text: str, name: str) -> float:
    values = {}
    for line in metrics_text.splitlines():
        for part in ("_sum", "_count"):
            if line.startswith(name + part + " "):
                values[part] = float(line.rsplit(" ", 1)[1])
    return values["_sum"] / values["_count"] if values.get("_count") else float("nan")


def start_server(model: str, port: int, log) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "crossrank.cli.main", "serve", "--model", model,
                             "--port", str(port), "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"crossrank serve exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("crossrank serve did not start in 180 s")


def main(argv=None) -> int:
    import httpx

    from crossrank import CrossEncoder

    args = parse_args(argv)
    requests = make_requests(200, args.docs)
    bodies = [json.dumps(r).encode() for r in requests]
    model = CrossEncoder(args.model, device="cpu")
    sample = [(r["query"], d) for r in requests[:16] for d in r["documents"]]
    model.predict(sample[:32], batch_size=32, show_progress_bar=False)

    def offline_rate() -> float:
        start = time.perf_counter()
        model.predict(sample, batch_size=32, show_progress_bar=False)
        return len(sample) / (time.perf_counter() - start)

    before = offline_rate()
    port = free_port()
    with open(Path(args.output).with_name("serving.log"), "w") as log:
        proc = start_server(args.model, port, log)
        url = f"http://127.0.0.1:{port}"
        try:
            httpx.post(f"{url}/v2/rerank", content=bodies[0], timeout=120)  # warm-up
            pairs, elapsed, latencies, failures = asyncio.run(run_load(url, bodies, args.clients, args.docs, args.seconds))
            metrics_text = httpx.get(f"{url}/metrics").text
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    offline = (before + offline_rate()) / 2
    served = pairs / elapsed
    p50, p99 = np.percentile(latencies, [50, 99])
    batch_pairs = histogram_mean(metrics_text, "crossrank_batch_pairs")
    machine = host()
    lines = [
        "## Serving under load (`benchmarks/bench_serving.py`)",
        "",
        f"Host: {machine}. Model: `{args.model}` (offline predict: {model.backend} {model.precision}).",
        f"{args.clients} concurrent clients x {args.docs} documents per request for {elapsed:.1f} s on loopback.",
        "",
        "| served pairs/s | offline pairs/s | served / offline | p50 latency | p99 latency | requests | failed | mean pairs per batch |",
        "|---|---|---|---|---|---|---|---|",
        f"| {served:.1f} | {offline:.1f} | {served / offline:.0%} | {p50 * 1000:.0f} ms | {p99 * 1000:.0f} ms | "
        f"{len(latencies)} | {len(failures)} | {batch_pairs:.1f} |",
    ]
    print("\n".join(lines))
    if failures:
        print("first failures:", *failures[:5], sep="\n  ")
    replace_section(args.output, "serving", "\n".join(lines))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

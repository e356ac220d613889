"""Batch reranking sharded over Ray workers (`crossrank rerank --engine ray`).

One Ray actor per worker slot (a GPU, or `cpus_per_worker` CPUs) loads the cross-encoder once.
The queries still to do are cut into the same chunks the single-process `rerank_run` scores in one
pass (`RerankConfig.chunk_pairs`), and a shard is one or more whole consecutive chunks, so every
worker sees exactly the batches the single process would. The driver collects shards as workers
finish them and writes them in input order through `rerank_run`'s own resumable writer
(`RunProgress`: OUTPUT.partial + OUTPUT.progress, renamed to OUTPUT at the end): the run is byte-identical to the
single-process output at the same intra-op thread count (CPU float sums depend on it; a CPU worker
runs `int(cpus_per_worker)` torch threads), every query is written once, and a killed driver resumes.

A shard whose worker dies (`RayActorError`: the actor is replaced) or whose task raises is
submitted again, up to `max_retries` times; after that the shards before it are still written and
`ShardFailedError` names the failing shard's query ids. Running the same command again resumes.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from crossrank.data.candidates import Candidates
from crossrank.pipeline.progress import RunProgress, chunks
from crossrank.pipeline.rerank import RerankConfig, RerankStats
from crossrank.pipeline.scoring import score

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'crossrank[ray]'"


class RayNotInstalledError(ImportError):
    """Ray is an optional extra."""


class ShardFailedError(RuntimeError):
    """A shard failed on every attempt; the queries before it are written and a rerun resumes."""

    def __init__(self, query_ids: list[str], attempts: int, cause: BaseException):
        self.query_ids = query_ids
        self.attempts = attempts
        super().__init__(
            f"Ray shard with queries {', '.join(query_ids)} failed {attempts} time(s); last error: "
            f"{type(cause).__name__}: {cause}. The queries before it are kept; run the same command again to resume."
        )


@dataclass
class RayEngineConfig:
    num_workers: int | None = None  # None: one per GPU if the cluster has GPUs, else one per cpus_per_worker CPUs
    cpus_per_worker: float = 1.0  # a CPU worker runs int(cpus_per_worker) torch threads (at least 1)
    gpus_per_worker: float | None = None  # None: 1 if the cluster has GPUs, else 0
    shard_queries: int | None = None  # queries per task, rounded up to whole scoring chunks; None: one chunk
    max_retries: int = 3  # further attempts per shard after a failure
    address: str | None = None  # Ray cluster to join; None: the running one, $RAY_ADDRESS, else a new local one
    model_factory: Callable[..., Any] | None = None  # picklable; (model_path, **model_kwargs) -> model; None: CrossEncoder

    def __post_init__(self) -> None:
        checks = [("num_workers", self.num_workers, 1), ("shard_queries", self.shard_queries, 1)]
        for name, value, low in checks:
            if value is not None and (not isinstance(value, int) or value < low):
                raise ValueError(f"RayEngineConfig expects {name} to be an integer >= {low} or None, but got {value!r}")
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"RayEngineConfig expects max_retries to be an integer >= 0, but got {self.max_retries!r}")
        if not self.cpus_per_worker > 0:
            raise ValueError(f"RayEngineConfig expects cpus_per_worker > 0, but got {self.cpus_per_worker!r}")
        if self.gpus_per_worker is not None and not self.gpus_per_worker >= 0:
            raise ValueError(f"RayEngineConfig expects gpus_per_worker >= 0 or None, but got {self.gpus_per_worker!r}")


@dataclass
class RayRerankStats(RerankStats):
    workers: int = 0
    shards: int = 0
    retries: int = 0  # shard attempts submitted again after a failure
    replaced_workers: int = 0  # actors that died and were started again


def import_ray():
    """The `ray` module, or RayNotInstalledError with the install command."""
    try:
        import ray
    except ImportError as exc:
        raise RayNotInstalledError(f"--engine ray needs Ray, which is an optional extra: {INSTALL_HINT}") from exc
    return ray


class _ShardWorker:
    """A Ray actor body: loads the model once, then scores shards (lists of chunks)."""

    def __init__(self, model_path: str, model_kwargs: dict, config: RerankConfig, factory: Callable[..., Any] | None,
                 threads: int | None):
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        if factory is None:
            from crossrank import CrossEncoder as factory
        self.model = factory(model_path, **model_kwargs)
        self.config = config

    def ready(self) -> bool:
        return True

    def score(self, shard: list[list[Candidates]]) -> list[list]:
        return [[list(map(float, s)) for s in score(self.model, chunk, self.config.scoring())] for chunk in shard]


def model_folder_identity(model_path: str | Path, model_kwargs: dict) -> str:
    """The model the workers load, as far as the driver can tell without loading it: the folder,
    its weight files (name, size, modification time) and the loading options."""
    folder = Path(model_path)
    files = sorted(f for f in folder.glob("*") if f.suffix in (".safetensors", ".bin", ".json")) if folder.is_dir() else []
    stamp = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return json.dumps([str(folder.resolve()) if folder.exists() else str(model_path), stamp, sorted(model_kwargs.items())], default=str)


def _shards(chunks: Iterable[list[Candidates]], shard_queries: int | None) -> list[list[list[Candidates]]]:
    shards: list[list[list[Candidates]]] = []
    current: list[list[Candidates]] = []
    for chunk in chunks:
        current.append(chunk)
        if sum(len(ch) for ch in current) >= (shard_queries or 1):
            shards.append(current)
            current = []
    if current:
        shards.append(current)
    return shards


def _connect(ray, engine: RayEngineConfig, workers_wanted: int | None) -> bool:
    """Join or start Ray; True when this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if engine.address is not None or os.environ.get("RAY_ADDRESS"):  # a cluster of its own size: no num_cpus
        ray.init(address=engine.address, **quiet)
    else:
        num_cpus = None if workers_wanted is None else max(1, round(workers_wanted * engine.cpus_per_worker))
        ray.init(num_cpus=num_cpus, **quiet)
    return True


def _slots(ray, engine: RayEngineConfig) -> tuple[int, float]:
    """(workers, GPUs per worker) from the config and the cluster's resources."""
    resources = ray.cluster_resources()
    gpus = engine.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
    workers = engine.num_workers
    if workers is None:
        workers = int(resources.get("GPU", 0) // gpus) if gpus > 0 else int(resources.get("CPU", 1) // engine.cpus_per_worker)
    return max(1, workers), gpus


@dataclass
class _Job:
    """What every step of one Ray reranking shares."""

    ray: Any
    model_path: str
    model_kwargs: dict
    config: RerankConfig
    engine: RayEngineConfig
    progress: RunProgress
    stats: RayRerankStats


def rerank_run_ray(model_path: str | Path, candidates: Iterable[Candidates], output: str | Path,
                   config: RerankConfig | None = None, model_kwargs: dict | None = None,
                   engine: RayEngineConfig | None = None) -> RayRerankStats:
    """Rerank `candidates` on Ray workers into `output`, exactly as `rerank_run` would write it."""
    ray = import_ray()
    config = config or RerankConfig()
    engine = engine or RayEngineConfig()
    model_kwargs = dict(model_kwargs or {})
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    progress = config.progress(output, model_folder_identity(model_path, model_kwargs))
    done = progress.load()
    if done:
        logger.info("resuming %s: %d queries already reranked", output, len(done))
    shards = _shards(chunks(candidates, progress, config.chunk_pairs, config.first_chunk_pairs), engine.shard_queries)
    start = time.perf_counter()
    stats = RayRerankStats(0, 0, len(done), 0.0, shards=len(shards))
    started = _connect(ray, engine, engine.num_workers) if shards else False
    try:
        if shards:
            _run_shards(_Job(ray, str(model_path), model_kwargs, config, engine, progress, stats), shards)
    finally:
        if started:
            ray.shutdown()
    progress.finish(output)
    stats.seconds = time.perf_counter() - start
    return stats


def _run_shards(job: _Job, shards: list[list[list[Candidates]]]) -> None:
    """Score the shards on a pool of actors, retrying failures, and write them in order."""
    ray, engine, stats, model_path = job.ray, job.engine, job.stats, job.model_path
    n_workers, gpus = _slots(ray, engine)
    n_workers = min(n_workers, len(shards))
    threads = None if gpus > 0 else max(1, int(engine.cpus_per_worker))
    actor = ray.remote(num_cpus=engine.cpus_per_worker, num_gpus=gpus)(_ShardWorker)

    def new_worker():
        return actor.remote(model_path, job.model_kwargs, job.config, engine.model_factory, threads)

    workers = [new_worker() for _ in range(n_workers)]
    stats.workers = n_workers
    try:
        try:
            ray.get([w.ready.remote() for w in workers])
        except ray.exceptions.RayError as exc:
            raise RuntimeError(f"Ray workers could not load the model {model_path!r}: {exc}") from exc
        _schedule(job, workers, new_worker, shards)
    finally:
        for w in workers:
            ray.kill(w)


def _schedule(job: _Job, workers: list, new_worker: Callable[[], Any], shards: list[list[list[Candidates]]]) -> None:
    ray, config, engine, progress, stats = job.ray, job.config, job.engine, job.progress, job.stats
    pending = deque(range(len(shards)))
    attempts = [0] * len(shards)
    results: dict[int, list] = {}
    in_flight: dict[Any, tuple[int, int]] = {}  # task -> (shard, worker slot)
    idle = list(range(len(workers)))
    failed: tuple[int, BaseException] | None = None  # the earliest shard out of retries
    next_write = 0
    total = sum(len(c) for shard in shards for chunk in shard for c in chunk)
    with progress.partial.open("a", encoding="utf-8") as out, tqdm(
        total=total, desc="Reranking (ray)", unit="pair", disable=None if config.show_progress is None else not config.show_progress
    ) as bar:
        while next_write < (failed[0] if failed else len(shards)):
            while pending and idle:
                shard, slot = pending.popleft(), idle.pop()
                in_flight[workers[slot].score.remote(shards[shard])] = (shard, slot)
            [task], _ = ray.wait(list(in_flight), num_returns=1)
            shard, slot = in_flight.pop(task)
            try:
                results[shard] = ray.get(task)
            except ray.exceptions.RayActorError as exc:  # the worker died: start another in its slot
                ray.kill(workers[slot])
                workers[slot] = new_worker()
                stats.replaced_workers += 1
                error: BaseException | None = exc
            except ray.exceptions.RayError as exc:  # the task raised; the worker is fine
                error = exc
            else:
                error = None
            idle.append(slot)
            if error is not None and not (failed and shard > failed[0]):  # a shard after a failed one is not needed
                attempts[shard] += 1
                logger.warning("shard %d (queries %s) failed (attempt %d): %s", shard, _query_ids(shards[shard]), attempts[shard], error)
                if attempts[shard] <= engine.max_retries:
                    stats.retries += 1
                    pending.appendleft(shard)
                elif failed is None or shard < failed[0]:
                    failed = (shard, error)
                    pending = deque(s for s in pending if s < shard)  # later shards could not be written in order
            while next_write in results:  # write every finished shard that is next in input order
                for chunk, scores in zip(shards[next_write], results.pop(next_write)):
                    for c in progress.write_scored(out, chunk, scores, config.format, config.tag):
                        stats.queries += 1
                        stats.pairs += len(c)
                        bar.update(len(c))
                next_write += 1
    if failed is not None:
        raise ShardFailedError(_query_ids(shards[failed[0]]), attempts[failed[0]], failed[1])


def _query_ids(shard: list[list[Candidates]]) -> list[str]:
    return [c.query_id for chunk in shard for c in chunk]

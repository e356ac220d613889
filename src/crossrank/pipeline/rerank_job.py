"""What `crossrank rerank` and `crossrank prepare` do, as library calls: candidates from files,
the ranker the model folder asks for, the engine that scores them."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from crossrank.data.atomic import check_writable
from crossrank.data.candidates import Candidates, check_depth, from_rerank_jsonl, from_run, to_rerank_items
from crossrank.pipeline.ray_engine import RayEngineConfig
from crossrank.pipeline.rerank import RerankConfig, RerankStats, rerank_run


@dataclass
class CandidateSource:
    """Candidate lists from a rerank JSONL file (`input`), or from a run with its corpus and queries."""

    input: str | Path | None = None
    run: str | Path | None = None
    corpus: str | Path | None = None
    queries: str | Path | None = None
    depth: int | None = 100  # candidates per query

    def __post_init__(self) -> None:
        check_depth(self.depth)
        if self.input is None:
            missing = [f"--{n}" for n in ("run", "corpus", "queries") if not getattr(self, n)]
            if missing:
                raise ValueError(f"give --input, or all of --run, --corpus and --queries (missing {', '.join(missing)})")

    def read(self) -> Iterator[Candidates]:
        if self.input is not None:
            return from_rerank_jsonl(self.input, self.depth)
        return from_run(self.run, self.corpus, self.queries, self.depth)


@dataclass
class RerankJob:
    """A model folder (or hub id) reranking `candidates` into the run file `output`."""

    model: str
    candidates: CandidateSource
    output: str | Path
    config: RerankConfig = field(default_factory=RerankConfig)
    fused: bool = False  # fuse as the model's fusion.json says (FusedReranker.load)
    max_length: int | None = None
    device: str | None = None
    engine: RayEngineConfig | None = None  # None: this process; else sharded over Ray workers
    backend: str | None = None  # CrossEncoder's backend= (None: its rules, `crossrank.model.backends`)
    precision: str | None = None  # CrossEncoder's precision=, "fastest" included

    def model_kwargs(self) -> dict:
        """What the cross-encoder is loaded with (here, or in each Ray worker)."""
        return {"max_length": self.max_length, "device": self.device, "backend": self.backend, "precision": self.precision}

    def __post_init__(self) -> None:
        check_writable(self.output)
        if self.fused and self.engine is not None:
            raise ValueError("--fused runs with --engine local only")
        if self.engine is not None:
            from crossrank.pipeline.ray_engine import import_ray

            import_ray()  # a missing extra fails before any work


def load_ranker(job: RerankJob):
    """The ranker the job asks for: the cross-encoder, or the fused reranker saved beside it."""
    if job.fused:
        from crossrank.model.fusion import FusedReranker

        return FusedReranker.load(job.model, **job.model_kwargs())
    from crossrank.model.cross_encoder import CrossEncoder

    return CrossEncoder(job.model, **job.model_kwargs())


def run_rerank_job(job: RerankJob) -> RerankStats:
    """Read and check every candidate list, then load the model and rerank them (resumable, atomic)."""
    candidates = list(job.candidates.read())  # read and checked before the model loads
    if job.engine is not None:
        from crossrank.pipeline.ray_engine import rerank_run_ray

        return rerank_run_ray(job.model, candidates, job.output, job.config, job.model_kwargs(), job.engine)
    return rerank_run(load_ranker(job), candidates, job.output, job.config, total_pairs=sum(len(c) for c in candidates))


def write_rerank_file(source: CandidateSource, output: str | Path) -> None:
    """Candidates as a rerank JSONL file (query_id, query, text_id, text, score)."""
    from crossrank.data import write_rerank_jsonl

    write_rerank_jsonl(output, (item for c in source.read() for item in to_rerank_items(c)))

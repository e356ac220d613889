"""Reranking candidate lists into a run file: streamed, resumable, atomic.

Queries are scored in chunks (many queries per batched pass, through `crossrank.pipeline.score`;
the first of `first_chunk_pairs` pairs, doubling up to `chunk_pairs`, so a short job keeps its
first queries within seconds) and written query by query through `RunProgress` (`crossrank.pipeline.progress`): a killed job
started again resumes after the last query written; the run appears at OUTPUT only when complete.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from crossrank.data.candidates import Candidates
from crossrank.data.fields import is_int_at_least
from crossrank.model.ranker import Ranker, ScoringOptions
from crossrank.pipeline.progress import RunProgress, chunks
from crossrank.pipeline.scoring import score

if TYPE_CHECKING:
    from crossrank.model.windows import WindowConfig

logger = logging.getLogger(__name__)


@dataclass
class RerankConfig:
    format: str = "trec"  # trec or msmarco
    tag: str = "crossrank"
    batch_size: int | None = None  # None: batches bounded by the model's token budget
    chunk_pairs: int = 2048  # pairs scored per batched pass (several queries at once)
    first_chunk_pairs: int = 64  # the first chunk's pairs, doubling up to chunk_pairs: a short job keeps its first queries early
    show_progress: bool | None = None
    long_passages: str = "truncate"  # or "window": see CrossEncoder.predict
    window: WindowConfig | None = None  # with long_passages="window"; None: WindowConfig()
    overwrite: bool = False  # start again, discarding an unfinished run at the output (else it is resumed, if it matches)

    def __post_init__(self) -> None:
        if self.format not in ("trec", "msmarco"):
            raise ValueError(f"RerankConfig expects format 'trec' or 'msmarco', but got {self.format!r}")
        for name, low in (("batch_size", 1), ("chunk_pairs", 1), ("first_chunk_pairs", 1)):
            value = getattr(self, name)
            if value is not None and not is_int_at_least(value, low):
                raise ValueError(f"RerankConfig expects {name} to be an integer >= {low}"
                                 f"{' or None' if name == 'batch_size' else ''}, but got {value!r}")
        if self.long_passages != "truncate" or self.window is not None:  # bad settings fail before any work
            from crossrank.model.windows import resolve_long_passages

            resolve_long_passages(self.long_passages, self.window)

    def scoring(self) -> ScoringOptions:
        """How each chunk is scored (`crossrank.pipeline.score`)."""
        return ScoringOptions(batch_size=self.batch_size, long_passages=self.long_passages, window=self.window)

    def progress(self, output: Path, model_identity: str | None) -> RunProgress:
        """The resumable writer for `output`, bound to what decides its lines (a resume checks them)."""
        settings = {"model": model_identity, "format": self.format, "tag": self.tag,
                    "long_passages": self.long_passages, "window": None if self.window is None else repr(self.window)}
        return RunProgress(output, settings, overwrite=self.overwrite)


@dataclass
class RerankStats:
    queries: int
    pairs: int
    skipped_queries: int
    seconds: float

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / self.seconds if self.seconds > 0 else 0.0


def rerank_run(model: Ranker, candidates: Iterable[Candidates], output: str | Path, config: RerankConfig | None = None,
               total_pairs: int | None = None) -> RerankStats:
    """Score every query's candidates with `model` (any `Ranker`) and write the reranked run to `output`."""
    config = config or RerankConfig()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    progress = config.progress(output, model.identity() if hasattr(model, "identity") else None)
    done = progress.load()
    if done:
        logger.info("resuming %s: %d queries already reranked", output, len(done))
    start = time.perf_counter()
    n_queries = n_pairs = 0
    with progress.partial.open("a", encoding="utf-8") as out, tqdm(
        total=total_pairs, desc="Reranking", unit="pair", disable=None if config.show_progress is None else not config.show_progress
    ) as bar:
        for chunk in chunks(candidates, progress, config.chunk_pairs, config.first_chunk_pairs):
            for c in progress.write_scored(out, chunk, score(model, chunk, config.scoring()), config.format, config.tag):
                n_queries += 1
                n_pairs += len(c)
                bar.update(len(c))
    progress.finish(output)
    return RerankStats(n_queries, n_pairs, len(done), time.perf_counter() - start)

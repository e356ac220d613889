"""Reranking candidate lists into a run file: streamed, resumable, atomic.

Queries are scored in chunks (many queries per batched pass) and each finished query is appended
to `OUTPUT.partial` and recorded in `OUTPUT.progress` (query id and the partial file's size after
it). A killed job started again skips the recorded queries and truncates anything written after the
last record; when every query is done the partial file is renamed to OUTPUT.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from crossrank.data.runs import format_ranked
from crossrank.pipeline.candidates import Candidates

if TYPE_CHECKING:
    from crossrank.model.windows import WindowConfig

logger = logging.getLogger(__name__)


@dataclass
class RerankConfig:
    format: str = "trec"  # trec or msmarco
    tag: str = "crossrank"
    batch_size: int | None = None  # None: batches bounded by the model's token budget
    chunk_pairs: int = 2048  # pairs scored per batched pass (several queries at once)
    show_progress: bool | None = None
    long_passages: str = "truncate"  # or "window": see CrossEncoder.predict
    window: WindowConfig | None = None  # with long_passages="window"; None: WindowConfig()

    def __post_init__(self) -> None:
        if self.long_passages != "truncate" or self.window is not None:  # bad settings fail before any work
            from crossrank.model.windows import resolve_long_passages

            resolve_long_passages(self.long_passages, self.window)

    def scoring_options(self) -> dict:
        """Keywords for the model's `rerank_many` (none for truncation, so any model fits)."""
        if self.long_passages == "truncate":
            return {}
        return {"long_passages": self.long_passages, "window": self.window}


@dataclass
class RerankStats:
    queries: int
    pairs: int
    skipped_queries: int
    seconds: float

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / self.seconds if self.seconds > 0 else 0.0


class _Progress:
    """The partial output and its progress record, for resuming."""

    def __init__(self, output: Path):
        self.partial = output.with_name(output.name + ".partial")
        self.record = output.with_name(output.name + ".progress")

    def load(self) -> set[str]:
        if not (self.partial.exists() and self.record.exists()):
            self.partial.write_text("")
            self.record.write_text("")
            return set()
        done: set[str] = set()
        size = 0
        for line in self.record.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) == 2 and parts[1].isdigit():
                done.add(parts[0])
                size = int(parts[1])
        with self.partial.open("r+b") as f:
            f.truncate(size)  # drop a query that was half written when the job died
        return done

    def append(self, out, qid: str, text: str) -> None:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
        with self.record.open("a", encoding="utf-8") as rec:
            rec.write(f"{qid}\t{out.tell()}\n")

    def finish(self, output: Path) -> None:
        os.replace(self.partial, output)
        self.record.unlink(missing_ok=True)


def _chunks(candidates: Iterable[Candidates], done: set[str], chunk_pairs: int) -> Iterator[list[Candidates]]:
    chunk: list[Candidates] = []
    size = 0
    for c in candidates:
        if c.query_id in done:
            continue
        chunk.append(c)
        size += len(c)
        if size >= chunk_pairs:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _score_chunk(model, chunk: list[Candidates], config: RerankConfig) -> list:
    """One batched pass of `model` over a chunk of queries: one score array per query."""
    extra = {"first_stage": [c.first_stage for c in chunk]} if getattr(model, "uses_first_stage", False) else {}
    extra.update(config.scoring_options())
    return model.rerank_many([c.query for c in chunk], [c.texts for c in chunk], batch_size=config.batch_size,
                             show_progress_bar=False, **extra)


def _write_scored(progress: _Progress, out, chunk: list[Candidates], scores, config: RerankConfig) -> Iterator[Candidates]:
    """Append each scored query to the partial output and record it, in order (yields each once written)."""
    for c, s in zip(chunk, scores):
        ranked = dict(zip(c.doc_ids, (float(x) for x in s)))
        progress.append(out, c.query_id, format_ranked(c.query_id, ranked, config.format, config.tag))
        yield c


def rerank_run(model, candidates: Iterable[Candidates], output: str | Path, config: RerankConfig | None = None,
               total_pairs: int | None = None) -> RerankStats:
    """Score every query's candidates with `model` and write the reranked run to `output`."""
    config = config or RerankConfig()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    progress = _Progress(output)
    done = progress.load()
    if done:
        logger.info("resuming %s: %d queries already reranked", output, len(done))
    start = time.perf_counter()
    n_queries = n_pairs = 0
    with progress.partial.open("a", encoding="utf-8") as out, tqdm(
        total=total_pairs, desc="Reranking", unit="pair", disable=None if config.show_progress is None else not config.show_progress
    ) as bar:
        for chunk in _chunks(candidates, done, config.chunk_pairs):
            for c in _write_scored(progress, out, chunk, _score_chunk(model, chunk, config), config):
                n_queries += 1
                n_pairs += len(c)
                bar.update(len(c))
    progress.finish(output)
    return RerankStats(n_queries, n_pairs, len(done), time.perf_counter() - start)

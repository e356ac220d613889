"""BM25 over a whole corpus -> a run file, with an index directory reused when it holds one.

    from crossrank.retrieval.retrieve_job import RetrieveConfig, retrieve_to_file

    retrieve_to_file(RetrieveConfig("corpus.jsonl", "queries.jsonl", "run.trec", index="bm25-index"))

What `crossrank retrieve` runs. The index policy (`open_index`): a `config.index` directory that
holds an index is reloaded (memory-mapped), and `k1` / `b` given beside it must be the ones it was
built with; a new or empty directory gets the index built from `config.corpus`. Never imports torch.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from crossrank.retrieval.bm25 import BM25Index
from crossrank.retrieval.config import BM25Config

logger = logging.getLogger("crossrank.retrieve")

DEFAULT_TAG = "crossrank-bm25"


@dataclass
class RetrieveConfig:
    """What to retrieve, from what, and where the run and the index go.

    `k1` / `b`: None takes BM25Config's default for a new index, or the saved index's.
    `threads`: None searches on every core for corpora of 100k+ passages, else on one.
    """

    corpus: Path
    queries: Path
    output: Path
    index: Path | None = None  # directory: reloaded if it holds an index, else the new index is saved there
    k: int = 1000
    k1: float | None = None
    b: float | None = None
    format: str = "trec"  # or "msmarco"
    tag: str = DEFAULT_TAG  # run tag in TREC runs
    threads: int | None = None
    show_progress: bool = True

    def __post_init__(self) -> None:
        self.corpus, self.queries, self.output = Path(self.corpus), Path(self.queries), Path(self.output)
        self.index = None if self.index is None else Path(self.index)
        if self.k < 1:
            raise ValueError(f"--k must be >= 1, got {self.k}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {self.threads}")
        from crossrank.data.ranges import Range, check_ranges

        check_ranges("retrieve", self, {"k": Range(1, integer=True), "k1": Range(0, optional=True), "b": Range(0, 1, optional=True),
                                        "threads": Range(1, integer=True, optional=True)})


@dataclass
class RetrieveResult:
    """What `retrieve_to_file` wrote."""

    output: Path
    queries: int  # queries searched
    passages: int  # lines of the run
    seconds: float
    index: BM25Index


def corpus_source(path: Path) -> dict:
    """The metadata an index keeps of the corpus it was built from."""
    return {"corpus": str(path.resolve()), "corpus_bytes": path.stat().st_size}


def open_index(config: RetrieveConfig) -> BM25Index:
    """The index `config` asks for: reloaded from `config.index` when it holds one, else built (and saved there)."""
    from crossrank.data import iter_corpus

    if config.index is not None and BM25Index.is_index(config.index):
        return _reload(config)
    if config.index is not None:
        BM25Index.check_can_save(config.index)  # fail now, not after indexing
    defaults = BM25Config()
    bm25 = BM25Config(k1=defaults.k1 if config.k1 is None else config.k1, b=defaults.b if config.b is None else config.b)
    if not config.corpus.is_file():
        raise FileNotFoundError(f"corpus file not found: {config.corpus}")
    index = BM25Index.build(iter_corpus(config.corpus), bm25, show_progress=config.show_progress,
                            metadata=corpus_source(config.corpus))
    if config.index is not None:
        index.save(config.index)
    return index


def _reload(config: RetrieveConfig) -> BM25Index:
    index = BM25Index.load(config.index, mmap=True)
    asked = {"k1": config.k1, "b": config.b}
    clash = {name: value for name, value in asked.items() if value is not None and value != getattr(index.config, name)}
    if clash:
        have = ", ".join(f"{name}={getattr(index.config, name)}" for name in clash)
        want = ", ".join(f"{name}={value}" for name, value in clash.items())
        raise ValueError(f"the index in {config.index} was built with {have}, not {want}: "
                         "give another --index directory (or none) to build one with these settings")
    source = corpus_source(config.corpus)
    if index.metadata.get("corpus_bytes") not in (None, source["corpus_bytes"]):
        logger.warning("the index in %s was built from %s (%s bytes), but --corpus %s has %s bytes",
                       config.index, index.metadata.get("corpus"), index.metadata.get("corpus_bytes"),
                       config.corpus, source["corpus_bytes"])
    logger.info("reloaded %r from %s", index, config.index)
    return index


def retrieve_to_file(config: RetrieveConfig) -> RetrieveResult:
    """Retrieve the top `config.k` passages of each query and write them (atomically) as a run file."""
    from crossrank.data import iter_queries, write_run

    if not config.queries.is_file():
        raise FileNotFoundError(f"queries file not found: {config.queries}")
    started = time.perf_counter()
    index = open_index(config)
    queries = list(iter_queries(config.queries))
    if not queries:
        raise ValueError(f"no queries in {config.queries}")
    results = index.search(queries, k=config.k, show_progress=config.show_progress, n_threads=config.threads)
    config.output.parent.mkdir(parents=True, exist_ok=True)
    write_run(config.output, results, format=config.format, tag=config.tag)
    retrieved = sum(len(docs) for docs in results.values())
    seconds = time.perf_counter() - started
    logger.info("wrote %s: %d queries, %d passages (%.1f per query) in %.1fs",
                os.fspath(config.output), len(results), retrieved, retrieved / len(results), seconds)
    return RetrieveResult(config.output, len(results), retrieved, seconds, index)

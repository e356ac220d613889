"""BM25Index: build a bm25s index over passages, save / memory-map it, search it with queries.

Ranking is deterministic: documents are ordered by score (descending), and documents with
equal scores by doc id descending (code point order, so "9" before "10"), which is trec_eval's
rule and crossrank.data.write_run's, so a run written from ``search`` keeps its order. Only
documents that contain at least one query term (score > 0) are returned, as with Lucene, so
a query can get fewer than ``k`` documents, and a query with no term in the corpus gets none.
Scores are bm25s's float32 values: with method="lucene", Lucene's (>= 8) BM25, i.e.
idf = ln(1 + (N - df + 0.5) / (df + 0.5)) times tf / (tf + k1 * (1 - b + b * dl / avgdl)),
summed over the query terms (a term repeated in the query counts once per repeat).
"""
from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator

import bm25s
import numpy as np
from tqdm.auto import tqdm

from crossrank.data.atomic import atomic_dir
from crossrank.data.records import Passage, Query
from crossrank.retrieval.analyzer import VOCAB_FILE, Analyzer, passage_text
from crossrank.retrieval.config import BM25Config
from crossrank.retrieval.docids import DocIds
from crossrank.retrieval.errors import NotAnIndexError
from crossrank.retrieval.topk import top_k

logger = logging.getLogger(__name__)

MANIFEST_FILE = "crossrank_bm25.json"
FORMAT = "crossrank-bm25"
FORMAT_VERSION = 1
# what bm25s.BM25.save writes for the lucene / robertson / atire methods
BM25S_FILES = ("params.index.json", "vocab.index.json", "data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy")

Run = dict[str, dict[str, float]]
PARALLEL_MIN_DOCS = 100_000  # search() uses all cores by default from this corpus size on


def _batched(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


class BM25Index:
    """A BM25 index over a passage collection that keeps the original doc ids.

    >>> index = BM25Index.build(passages)             # BM25Config() defaults: k1=0.9, b=0.4
    >>> run = index.search(queries, k=1000)            # {query_id: {doc_id: score}}
    >>> index.save("indexes/scifact"); BM25Index.load("indexes/scifact")  # mmap=True
    """

    def __init__(self, retriever: bm25s.BM25, analyzer: Analyzer, doc_ids: DocIds, config: BM25Config,
                 metadata: dict[str, Any] | None = None):
        self._retriever = retriever
        self._analyzer = analyzer
        self._doc_ids = doc_ids
        self.config = config
        self.metadata: dict[str, Any] = dict(metadata or {})

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, passages: Iterable[Passage], config: BM25Config | None = None, *, show_progress: bool = True,
              metadata: dict[str, Any] | None = None) -> "BM25Index":
        """Index ``passages`` (read once, as a stream). Title and text are indexed together.

        ``metadata`` (JSON-serialisable) is kept in the saved index, e.g. where the corpus came from.
        Raises ValueError for an empty corpus, a duplicate or empty doc id, or a corpus
        without a single indexable term.
        """
        config = config or BM25Config()
        analyzer = Analyzer(config)  # fails early on an unknown stemmer / stopword list
        started = time.perf_counter()
        ids: list[str] = []
        seen: set[str] = set()

        def texts() -> Iterator[str]:
            for passage in tqdm(passages, desc="BM25 index", unit=" docs", disable=not show_progress):
                doc_id = passage.doc_id
                if not isinstance(doc_id, str) or not doc_id:
                    raise ValueError(f"passage #{len(ids) + 1} has an invalid doc id {doc_id!r} (need a non-empty str)")
                if doc_id in seen:
                    raise ValueError(f"duplicate doc id {doc_id!r} in the corpus")
                seen.add(doc_id)
                ids.append(doc_id)
                yield passage_text(passage)

        term_ids = list(analyzer.index_terms(texts()))
        if not ids:
            raise ValueError("cannot build a BM25 index from an empty corpus (no passages)")
        vocab = dict(analyzer.vocab)  # a copy: bm25s adds its own "" entry to the dict it gets
        if not vocab:
            raise ValueError(f"cannot build a BM25 index: none of the {len(ids)} passages has an indexable term "
                             "(all empty, or only stopwords / one-character tokens)")
        retriever = bm25s.BM25(k1=config.k1, b=config.b, method=config.method)
        retriever.index((term_ids, vocab), show_progress=show_progress)
        del term_ids, seen
        logger.info("indexed %d passages, %d terms in %.1fs", len(ids), len(vocab), time.perf_counter() - started)
        return cls(retriever, analyzer, DocIds.from_list(ids), config, metadata)

    # ------------------------------------------------------------------ properties
    def __len__(self) -> int:
        return len(self._doc_ids)

    @property
    def doc_ids(self) -> DocIds:
        """The original doc ids, in corpus order (``index.doc_ids[i]``, ``len(...)``, ``.tolist()``)."""
        return self._doc_ids

    @property
    def num_terms(self) -> int:
        return len(self._analyzer.vocab)

    # ------------------------------------------------------------------ search
    def search(self, queries: Iterable[Query], k: int = 1000, *, show_progress: bool = True,
               n_threads: int | None = None, batch_size: int = 1024) -> Run:
        """Top-``k`` passages for every query: ``{query_id: {doc_id: score}}``, each inner dict best first.

        Queries are analysed in batches of ``batch_size``. Scoring and top-k selection (numpy,
        which releases the GIL for much of the work) run on ``n_threads`` threads while the main
        thread turns finished results into doc ids. Default: all cores for corpora of at least
        100,000 passages, one thread below that (where thread overhead outweighs the numpy work).
        Ties are broken by doc id (descending), so results never depend on threads, batches or
        corpus order.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        if n_threads is None:
            n_threads = (os.cpu_count() or 1) if len(self) >= PARALLEL_MIN_DOCS else 1
        if n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads!r}")
        total = len(queries) if hasattr(queries, "__len__") else None
        nothing = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))

        def score(term_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
            if not term_ids:
                return nothing
            scores = self._retriever.get_scores_from_ids(term_ids)
            best = top_k(scores, k, self._doc_ids.rank)
            return best, scores[best]

        run: Run = {}
        pool = ThreadPoolExecutor(max_workers=n_threads) if n_threads > 1 else None
        try:
            with tqdm(total=total, desc="BM25 search", unit=" queries", disable=not show_progress) as bar:
                for batch in _batched(queries, batch_size):
                    for query in batch:
                        if query.query_id in run:
                            raise ValueError(f"duplicate query id {query.query_id!r}")
                        run[query.query_id] = {}  # placeholder: marks the id as seen within the batch too
                    term_ids = self._analyzer.query_terms([query.text for query in batch])
                    ranked = map(score, term_ids) if pool is None else pool.map(score, term_ids)
                    for query, (best, values) in zip(batch, ranked):
                        run[query.query_id] = dict(zip(self._doc_ids.take(best), values.tolist()))
                        bar.update(1)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        empty = sum(1 for docs in run.values() if not docs)
        if empty:
            logger.info("%d of %d queries matched no passage", empty, len(run))
        return run

    def score_docs(self, query: str, doc_ids: list[str]) -> np.ndarray:
        """BM25 scores of `query` for the given indexed passages (0 where no term matches), float32.

        A doc id that is not in the index is refused (ValueError naming it)."""
        if not hasattr(self, "_positions"):
            self._positions = {d: i for i, d in enumerate(self._doc_ids.tolist())}
        missing = [d for d in doc_ids if d not in self._positions]
        if missing:
            raise ValueError(f"score_docs: passage {missing[0]!r} is not in the index ({len(missing)} missing)")
        terms = self._analyzer.query_terms([query])[0]
        if not terms:
            return np.zeros(len(doc_ids), dtype=np.float32)
        scores = self._retriever.get_scores_from_ids(terms)
        return np.asarray(scores[[self._positions[d] for d in doc_ids]], dtype=np.float32)

    # ------------------------------------------------------------------ persistence
    @staticmethod
    def required_files() -> tuple[str, ...]:
        return (MANIFEST_FILE, *BM25S_FILES, VOCAB_FILE, *DocIds.files())

    @classmethod
    def is_index(cls, directory: str | os.PathLike) -> bool:
        """True when ``directory`` holds a complete saved index (all files present)."""
        directory = Path(directory)
        return directory.is_dir() and all((directory / name).is_file() for name in cls.required_files())

    @staticmethod
    def check_can_save(directory: str | os.PathLike) -> None:
        """Raise ValueError unless ``save(directory)`` may write there: a new or empty directory,
        or one that holds a (possibly incomplete) crossrank index. Lets callers fail before building."""
        directory = Path(directory)
        if directory.exists():
            if not directory.is_dir():
                raise ValueError(f"cannot save a BM25 index to {directory}: it is a file")
            if any(directory.iterdir()) and not (directory / MANIFEST_FILE).is_file():
                raise ValueError(f"refusing to save a BM25 index to {directory}: "
                                 "the directory is not empty and does not hold a crossrank BM25 index")

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the index to ``directory`` (created; an existing index there is replaced).

        Written to a temporary sibling directory and renamed into place, so a crash never
        leaves a half-written index under ``directory``. A non-empty directory that is not
        an index is never overwritten.
        """
        directory = Path(directory)
        self.check_can_save(directory)
        with atomic_dir(directory) as tmp:  # a sibling folder, swapped in whole on success
            self._retriever.save(str(tmp), show_progress=False)
            self._analyzer.save(tmp)
            self._doc_ids.save(tmp)
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "config": self.config.to_dict(),
                "num_docs": len(self),
                "num_terms": self.num_terms,
                "bm25s_version": bm25s.__version__,
                "metadata": self.metadata,
            }
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        logger.info("saved BM25 index (%d passages) to %s", len(self), directory)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, mmap: bool = True) -> "BM25Index":
        """Reload a saved index; with ``mmap=True`` the score matrix and doc ids are memory-mapped."""
        directory = Path(directory)
        if not directory.exists():
            raise NotAnIndexError(f"no BM25 index at {directory}: the directory does not exist")
        if not directory.is_dir():
            raise NotAnIndexError(f"no BM25 index at {directory}: it is a file, not a directory")
        missing = [name for name in cls.required_files() if not (directory / name).is_file()]
        if missing:
            what = "it is not a crossrank BM25 index" if MANIFEST_FILE in missing else "the index is incomplete"
            raise NotAnIndexError(f"no BM25 index at {directory}: {what}, missing {', '.join(missing)}")
        manifest_path = directory / MANIFEST_FILE
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{manifest_path} is not valid JSON: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise NotAnIndexError(f"no BM25 index at {directory}: {manifest_path.name} is not a {FORMAT} manifest")
        if manifest.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"{directory} holds index format {manifest['format_version']}; "
                             f"this crossrank reads up to {FORMAT_VERSION}")
        config = BM25Config.from_dict(manifest["config"])
        retriever = bm25s.BM25.load(str(directory), mmap=mmap, load_corpus=False, show_progress=False)
        analyzer = Analyzer.load(directory, config)
        doc_ids = DocIds.load(directory, mmap=mmap)
        sizes = {manifest.get("num_docs"), retriever.scores["num_docs"], len(doc_ids), len(doc_ids.rank)}
        if len(sizes) != 1:
            raise ValueError(f"corrupt BM25 index at {directory}: its files disagree on the number of passages {sorted(map(str, sizes))}")
        return cls(retriever, analyzer, doc_ids, config, manifest.get("metadata"))

    def __repr__(self) -> str:
        return f"BM25Index({len(self)} passages, {self.num_terms} terms, {self.config})"

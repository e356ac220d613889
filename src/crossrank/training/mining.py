"""Hard-negative mining: training examples from qrels plus a first stage's candidates.

Candidates are `{qid: {pid: score}}`: a run file (`crossrank.data.load_run`, e.g. BM25) or
`crossrank.training.dense.dense_candidates` (cosine of a bi-encoder). For each query with a judged
positive that has text, its candidates go through these steps, in order (each one's removals are
counted in `MiningStats.removed`):

1. ``positive``: every passage judged relevant (relevance > 0) is set aside -- never a negative;
2. ``no_text``: candidates missing from the collection are dropped;
3. ``window``: the remaining candidates, best first (score desc, then doc id), are cut to
   ranks ``[range_min, range_max)``;
4. ``max_score``: candidates scoring above `max_score` are dropped;
5. ``margin``: a candidate must score <= positive - `margin`, or <= positive * (1 - `relative_margin`),
   the positive's score being the first stage's (the lowest among the query's positives that
   have one); when no positive of the query has a first-stage score (not retrieved by the run)
   the margin cannot be checked and every candidate is dropped;
6. ``rescore``: with `rescore_model`, a CrossEncoder scores the query's positives and the
   remaining candidates; a candidate scoring >= (lowest positive score) - `rescore_margin` is
   dropped as a likely false negative;
7. `num_negatives` are chosen: the best ones ("top") or a random sample ("random", seeded per
   query, so a query's negatives do not depend on which other queries are mined).

Output `format`: "pairs" (one example per (query, passage, label)), "tuples" (one example per
positive: the positive then the negatives, labels [1, 0, ...]), "lists" (the positives with their
relevance grades, then the negatives with 0).
"""
from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from crossrank.training.datasets import choose_negatives, ranked_candidates
from crossrank.training.examples import TrainingExample

logger = logging.getLogger(__name__)

FORMATS = ("pairs", "tuples", "lists")
SAMPLING = ("top", "random")
FILTERS = ("positive", "no_text", "window", "max_score", "margin", "rescore")


@dataclass
class MiningConfig:
    """Options of `mine_negatives` (see the module docstring for the order they apply in)."""

    num_negatives: int = 7
    range_min: int = 0  # skip this many best (non-positive) candidates ...
    range_max: int | None = 100  # ... and consider them up to this rank (None: all)
    max_score: float | None = None  # drop candidates scoring above this
    margin: float | None = None  # candidate <= positive - margin
    relative_margin: float | None = None  # candidate <= positive * (1 - relative_margin)
    sampling: str = "top"  # "top" or "random"
    format: str = "tuples"  # "pairs", "tuples" or "lists"
    rescore_model: str | os.PathLike | None = None  # a CrossEncoder to catch false negatives
    rescore_margin: float = 0.0  # drop candidates with CE score >= positive CE score - rescore_margin
    rescore_batch_size: int = 32
    rescore_max_length: int | None = None
    min_negatives: int = 1  # a query with fewer negatives left gives no example
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def is_number(x) -> bool:
            return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

        for name in ("num_negatives", "range_min", "min_negatives", "rescore_batch_size", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"MiningConfig.{name} must be an integer, but got {value!r}")
        if self.num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, but got {self.num_negatives}")
        if self.range_min < 0:
            raise ValueError(f"range_min must be >= 0, but got {self.range_min}")
        if self.range_max is not None and (not isinstance(self.range_max, int) or self.range_max <= self.range_min):
            raise ValueError(f"range_max must be an integer above range_min={self.range_min} (or None), but got {self.range_max!r}")
        if self.min_negatives < 0 or self.min_negatives > self.num_negatives:
            raise ValueError(f"min_negatives must be between 0 and num_negatives={self.num_negatives}, but got {self.min_negatives}")
        if self.rescore_batch_size < 1:
            raise ValueError(f"rescore_batch_size must be >= 1, but got {self.rescore_batch_size}")
        from crossrank.data.ranges import Range, check_ranges

        check_ranges("MiningConfig", self, {"rescore_max_length": Range(1, integer=True, optional=True)})
        for name in ("max_score", "margin", "relative_margin", "rescore_margin"):
            value = getattr(self, name)
            if value is not None and not is_number(value):
                raise ValueError(f"MiningConfig.{name} must be a finite number, but got {value!r}")
        if self.margin is not None and self.relative_margin is not None:
            raise ValueError("give either margin (absolute) or relative_margin, not both")
        if self.relative_margin is not None and not 0 <= self.relative_margin <= 1:
            raise ValueError(f"relative_margin must be between 0 and 1, but got {self.relative_margin}")
        if self.rescore_margin is None:
            raise ValueError("rescore_margin must be a number (0 drops candidates the model scores at least as high as the positive)")
        if self.sampling not in SAMPLING:
            raise ValueError(f"sampling must be 'top' or 'random', but got {self.sampling!r}")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, but got {self.format!r}")

    def threshold(self, positive_score: float) -> float:
        """The highest first-stage score a candidate may have next to a positive scoring `positive_score`."""
        if self.margin is not None:
            return positive_score - self.margin
        if self.relative_margin is not None:
            return positive_score * (1.0 - self.relative_margin)
        return math.inf


@dataclass
class MiningStats:
    """What mining did: queries used and skipped, examples, negatives, candidates each filter removed."""

    queries: int = 0  # queries with candidates
    used: int = 0  # queries that gave examples
    skipped: dict[str, int] = field(default_factory=lambda: {"no_query_text": 0, "no_positive": 0, "too_few_negatives": 0})
    unscored_positive: int = 0  # queries whose positives have no first-stage score (margin not checkable)
    examples: int = 0
    negatives: int = 0  # negatives chosen, over the used queries
    removed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FILTERS, 0))

    @property
    def mean_negatives(self) -> float:
        return self.negatives / self.used if self.used else 0.0

    def summary(self) -> str:
        removed = ", ".join(f"{name} {count}" for name, count in self.removed.items())
        skipped = ", ".join(f"{name} {count}" for name, count in self.skipped.items())
        lines = [
            f"queries: {self.queries} with candidates, {self.used} mined; skipped: {skipped}",
            f"examples: {self.examples}; negatives per mined query: {self.mean_negatives:.2f}",
            f"candidates removed by filter: {removed}",
        ]
        if self.unscored_positive:
            lines.append(f"queries whose positive has no first-stage score (all candidates removed by margin): {self.unscored_positive}")
        return "\n".join(lines)


@dataclass
class MiningResult:
    examples: list[TrainingExample]
    stats: MiningStats


@dataclass
class _Pending:
    qid: str
    query: str
    positives: list[str]
    pool: list[str]


def mine_negatives(queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]], collection,
                   candidates: Mapping[str, Mapping[str, float]], config: MiningConfig | None = None,
                   *, rescorer=None, show_progress: bool | None = None) -> list[TrainingExample]:
    """Training examples with mined negatives (see the module docstring); `mine` also returns stats."""
    return mine(queries, qrels, collection, candidates, config, rescorer=rescorer, show_progress=show_progress).examples


def mine(queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]], collection,
         candidates: Mapping[str, Mapping[str, float]], config: MiningConfig | None = None,
         *, rescorer=None, show_progress: bool | None = None) -> MiningResult:
    """`mine_negatives` with its `MiningStats`.

    `queries`: `{qid: text}`; `qrels`: `{qid: {pid: relevance}}` (qids without candidates are
    ignored); `collection`: a `Collection` or any `pid -> text` mapping; `candidates`:
    `{qid: {pid: score}}`. Queries are mined in sorted qid order. `rescorer`: an object with
    `predict(pairs)` to use instead of loading `config.rescore_model`.
    """
    config = config or MiningConfig()
    config.validate()
    stats = MiningStats()
    pending: list[_Pending] = []
    for qid in sorted(candidates):
        stats.queries += 1
        if qid not in queries:
            stats.skipped["no_query_text"] += 1
            continue
        judged = qrels.get(qid, {})
        positives = [d for d, rel in sorted(judged.items()) if rel > 0 and d in collection]
        if not positives:
            stats.skipped["no_positive"] += 1
            continue
        item = _Pending(qid, queries[qid], positives, [])
        item.pool = _first_stage(item, judged, collection, candidates, config, stats)
        pending.append(item)

    if config.rescore_model is not None or rescorer is not None:
        _rescore(pending, collection, config, rescorer, stats, show_progress)

    examples: list[TrainingExample] = []
    for item in pending:
        rng = random.Random(f"{config.seed}\t{item.qid}")
        negatives = choose_negatives(item.pool, config.num_negatives, config.sampling, rng)
        if len(negatives) < config.min_negatives:
            stats.skipped["too_few_negatives"] += 1
            continue
        shaped = _shape(config.format, item, negatives, qrels[item.qid], collection)
        stats.used += 1
        stats.negatives += len(negatives)
        stats.examples += len(shaped)
        examples.extend(shaped)
    return MiningResult(examples, stats)


def _first_stage(item: _Pending, judged, collection, candidates, config: MiningConfig, stats: MiningStats) -> list[str]:
    """The query's first-stage candidates that may serve as negatives, after every filter of `config`."""
    qid, positives = item.qid, item.positives
    scores = candidates[qid]
    ranked = ranked_candidates(candidates, qid, len(scores))
    pool = [d for d in ranked if judged.get(d, 0) <= 0]
    stats.removed["positive"] += len(ranked) - len(pool)
    kept = [d for d in pool if d in collection]
    stats.removed["no_text"] += len(pool) - len(kept)
    pool = kept[config.range_min : config.range_max]
    stats.removed["window"] += len(kept) - len(pool)
    if config.max_score is not None:
        kept = [d for d in pool if scores[d] <= config.max_score]
        stats.removed["max_score"] += len(pool) - len(kept)
        pool = kept
    if config.margin is not None or config.relative_margin is not None:
        scored = [scores[p] for p in positives if p in scores]
        if not scored:
            stats.unscored_positive += 1
        limit = config.threshold(min(scored)) if scored else -math.inf
        kept = [d for d in pool if scores[d] <= limit]
        stats.removed["margin"] += len(pool) - len(kept)
        pool = kept
    return pool


def _rescore(pending: list[_Pending], collection, config: MiningConfig, rescorer, stats: MiningStats, show_progress) -> None:
    """Drop candidates a cross-encoder scores >= the query's lowest positive minus rescore_margin."""
    work = [item for item in pending if item.pool]
    if not work:
        return
    if rescorer is None:
        from crossrank.model import CrossEncoder

        rescorer = CrossEncoder(config.rescore_model, max_length=config.rescore_max_length)
    pairs = [(item.query, collection[d]) for item in work for d in item.positives + item.pool]
    logger.info("rescoring %d (query, passage) pairs with %r", len(pairs), rescorer)
    scores = rescorer.predict(pairs, batch_size=config.rescore_batch_size, show_progress_bar=show_progress)
    at = 0
    for item in work:
        n_pos = len(item.positives)
        pos_scores = scores[at : at + n_pos]
        cand_scores = scores[at + n_pos : at + n_pos + len(item.pool)]
        at += n_pos + len(item.pool)
        limit = float(min(pos_scores)) - config.rescore_margin
        kept = [d for d, s in zip(item.pool, cand_scores.tolist()) if s < limit]
        stats.removed["rescore"] += len(item.pool) - len(kept)
        item.pool = kept


def _shape(fmt: str, item: _Pending, negatives: list[str], judged: Mapping[str, int], collection) -> list[TrainingExample]:
    query, qid = item.query, item.qid
    if fmt == "pairs":
        out = [TrainingExample(query, [collection[p]], [1.0], qid, [p]) for p in item.positives]
        out += [TrainingExample(query, [collection[n]], [0.0], qid, [n]) for n in negatives]
        return out
    if fmt == "tuples":
        neg_texts = [collection[n] for n in negatives]
        return [TrainingExample(query, [collection[p]] + neg_texts, [1.0] + [0.0] * len(negatives), qid, [p] + negatives)
                for p in item.positives]
    docs = item.positives + negatives
    labels = [float(judged[p]) for p in item.positives] + [0.0] * len(negatives)
    return [TrainingExample(query, [collection[d] for d in docs], labels, qid, docs)]

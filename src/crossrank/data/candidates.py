"""`Candidates`: one query with its first-stage passages, the record every ranker scores.

Read from a run (+ corpus + queries) or a rerank JSONL file; `to_run` turns the scores of a list
of them into a run (query id -> doc id -> score), the shape `evaluation` measures and `runs` writes.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from crossrank.data.collection import Collection
from crossrank.data.errors import FormatError
from crossrank.data.fields import is_int_at_least
from crossrank.data.grouping import group_by_query
from crossrank.data.queries import load_queries
from crossrank.data.ranking import rank_scores
from crossrank.data.records import RerankItem
from crossrank.data.rerank_jsonl import iter_rerank_jsonl
from crossrank.data.runs import load_run


@dataclass
class Candidates:
    """A query and its candidate passages in first-stage order; `first_stage` holds their first-stage
    scores (None where the input has none)."""

    query_id: str
    query: str
    doc_ids: list[str]
    texts: list[str]
    first_stage: list[float | None]

    def __post_init__(self) -> None:
        if not (len(self.doc_ids) == len(self.texts) == len(self.first_stage)):
            raise ValueError(f"Candidates for query {self.query_id!r} expects as many texts and first-stage scores as doc ids "
                             f"({len(self.doc_ids)}), but got {len(self.texts)} texts and {len(self.first_stage)} scores")

    def __len__(self) -> int:
        return len(self.doc_ids)


def to_run(candidates: Sequence[Candidates], scores: Sequence[Sequence[float]]) -> dict[str, dict[str, float]]:
    """The run of scored candidate lists: query id -> {doc id: score}, one score per candidate."""
    if len(candidates) != len(scores):
        raise ValueError(f"to_run expects one score list per query ({len(candidates)}), but got {len(scores)}")
    run: dict[str, dict[str, float]] = {}
    for c, values in zip(candidates, scores):
        if len(values) != len(c):
            raise ValueError(f"to_run expects {len(c)} scores for query {c.query_id!r}, but got {len(values)}")
        run.setdefault(c.query_id, {}).update(zip(c.doc_ids, (float(v) for v in values)))
    return run


def check_depth(depth: int | None) -> None:
    """Candidates per query: an integer >= 1, or None for all of them."""
    if depth is not None and not is_int_at_least(depth, 1):
        raise ValueError(f"depth (candidates per query) expects an integer >= 1 or None, but got {depth!r}")


def from_run(run_path, corpus_path, queries_path, depth: int | None = None) -> Iterator[Candidates]:
    """Each query of a run (in file order) with its top-`depth` passages by first-stage score.
    An empty run, or an empty queries file, is an error (it would make an empty output)."""
    check_depth(depth)
    run = load_run(run_path)
    if not run:
        raise FormatError(run_path, None, "holds no ranked passage: nothing to rerank")
    queries = load_queries(queries_path)
    if not queries:
        raise FormatError(queries_path, None, "holds no query")
    corpus = Collection.open(corpus_path)
    for qid, scores in run.items():
        if qid not in queries:
            raise ValueError(f"{run_path}: query {qid!r} is not in {queries_path}")
        ranked = rank_scores(scores, depth)
        missing = [d for d, _ in ranked if d not in corpus]
        if missing:
            raise ValueError(f"{run_path}: query {qid!r}: passage {missing[0]!r} is not in {corpus_path} ({len(missing)} missing)")
        yield Candidates(qid, queries[qid], [d for d, _ in ranked], [corpus[d] for d, _ in ranked], [s for _, s in ranked])


def from_rerank_jsonl(path, depth: int | None = None) -> Iterator[Candidates]:
    """Each query of a rerank JSONL file; with scores, the top-`depth` by score, else file order."""
    check_depth(depth)
    empty = True
    for qid, items in group_by_query(iter_rerank_jsonl(path)):
        empty = False
        items = list(items)
        if all(it.score is not None for it in items):
            order = {d: i for i, (d, _) in enumerate(rank_scores({it.doc_id: it.score for it in items}))}
            items.sort(key=lambda it: order[it.doc_id])
        items = items[:depth] if depth else items
        yield Candidates(qid, items[0].query, [it.doc_id for it in items], [it.text for it in items], [it.score for it in items])
    if empty:
        raise FormatError(path, None, "holds no candidate: nothing to rerank")


def to_rerank_items(candidates: Candidates) -> Iterator[RerankItem]:
    for doc_id, text, score in zip(candidates.doc_ids, candidates.texts, candidates.first_stage):
        yield RerankItem(candidates.query_id, candidates.query, doc_id, text, score)

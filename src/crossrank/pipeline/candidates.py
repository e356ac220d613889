"""Candidate lists for reranking: one query with its first-stage passages, from any input format."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from crossrank.data import Collection, RerankItem, group_by_query, iter_rerank_jsonl, load_queries, load_run, rank_scores


@dataclass
class Candidates:
    query_id: str
    query: str
    doc_ids: list[str]
    texts: list[str]
    first_stage: list[float | None]

    def __len__(self) -> int:
        return len(self.doc_ids)


def from_run(run_path, corpus_path, queries_path, depth: int | None = None) -> Iterator[Candidates]:
    """Each query of a run (in file order) with its top-`depth` passages by first-stage score."""
    run = load_run(run_path)
    queries = load_queries(queries_path)
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
    for qid, items in group_by_query(iter_rerank_jsonl(path)):
        items = list(items)
        if all(it.score is not None for it in items):
            order = {d: i for i, (d, _) in enumerate(rank_scores({it.doc_id: it.score for it in items}))}
            items.sort(key=lambda it: order[it.doc_id])
        items = items[:depth] if depth else items
        yield Candidates(qid, items[0].query, [it.doc_id for it in items], [it.text for it in items], [it.score for it in items])


def to_rerank_items(candidates: Candidates) -> Iterator[RerankItem]:
    for doc_id, text, score in zip(candidates.doc_ids, candidates.texts, candidates.first_stage):
        yield RerankItem(candidates.query_id, candidates.query, doc_id, text, score)

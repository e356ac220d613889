"""File formats of passage re-ranking: queries, corpora, qrels, runs, triples, rerank JSONL.

Streaming readers (generators) with ids kept as strings; ``.gz`` is handled transparently;
every writer is atomic; a malformed line raises `FormatError` naming file and line.
No torch here (numpy only).
"""
from __future__ import annotations

from crossrank.data.atomic import atomic_dir, atomic_write, check_writable
from crossrank.data.collection import Collection
from crossrank.data.corpus import iter_corpus, join_title
from crossrank.data.errors import FormatError
from crossrank.data.grouping import group_by_query
from crossrank.data.qrels import iter_qrels, load_qrels
from crossrank.data.queries import iter_queries, load_queries
from crossrank.data.ranking import rank_scores
from crossrank.data.records import Passage, Qrel, Query, RerankItem, ScoredDoc, Triple
from crossrank.data.rerank_jsonl import iter_rerank_jsonl, write_rerank_jsonl
from crossrank.data.runs import RunWriter, convert_run, format_ranked, iter_run, load_run, write_run
from crossrank.data.textfiles import open_text
from crossrank.data.top1000 import iter_top1000
from crossrank.data.triples import iter_triples

__all__ = [
    "Collection",
    "FormatError",
    "Passage",
    "Qrel",
    "Query",
    "RerankItem",
    "RunWriter",
    "ScoredDoc",
    "Triple",
    "atomic_dir",
    "check_writable",
    "atomic_write",
    "convert_run",
    "format_ranked",
    "group_by_query",
    "iter_corpus",
    "iter_qrels",
    "iter_queries",
    "iter_rerank_jsonl",
    "iter_run",
    "iter_top1000",
    "iter_triples",
    "join_title",
    "load_qrels",
    "load_queries",
    "load_run",
    "open_text",
    "rank_scores",
    "write_rerank_jsonl",
    "write_run",
]

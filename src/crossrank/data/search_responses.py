"""Elasticsearch / OpenSearch search responses as a first-stage run.

A BM25 search on an Elasticsearch or OpenSearch index answers with a JSON body whose hits are
``hits.hits[*]._id`` and ``_score``. Such responses, one per line with the query id added, are a
run file crossrank reads like a TREC run (format ``"search-jsonl"``, detected from a first line that
starts with ``{``)::

    {"query_id": "1037798", "took": 3, "hits": {"hits": [{"_id": "7134595", "_score": 21.3}, ...]}}

One line holds one query's hits (the query id may not repeat on a later line); a response of
``_msearch`` is one such body per query. Hits without a ``_score`` (a search sorted by another
field) are refused: the reranker needs the first-stage scores to keep ``--depth`` meaningful.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from crossrank.data.errors import FormatError
from crossrank.data.fields import parse_json_object, require_str
from crossrank.data.records import ScoredDoc
from crossrank.data.textfiles import PathLike


def _hits(path: PathLike, number: int, obj: dict[str, Any]) -> list:
    hits = obj.get("hits")
    inner = hits.get("hits") if isinstance(hits, dict) else None
    if not isinstance(inner, list):
        raise FormatError(path, number, "expected a search response with a 'hits.hits' list")
    return inner


def _hit(path: PathLike, number: int, index: int, hit: Any) -> tuple[str, float]:
    where = f"hits.hits[{index}]"
    if not isinstance(hit, dict):
        raise FormatError(path, number, f"{where} must be an object, got {type(hit).__name__}")
    doc_id, score = hit.get("_id"), hit.get("_score")
    if not isinstance(doc_id, str) or not doc_id:
        raise FormatError(path, number, f"{where}._id must be a non-empty string, got {doc_id!r}")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or math.isnan(score):
        raise FormatError(path, number, f"{where}._score must be a number, got {score!r} (a search sorted by another field has no scores)")
    return doc_id, float(score)


def parse_search_response(path: PathLike, number: int, line: str) -> tuple[str, list[ScoredDoc]]:
    """The query id of one response line and its hits as ScoredDocs (an empty list: no hits)."""
    obj = parse_json_object(path, number, line)
    query_id = require_str(path, number, obj, "query_id")
    return query_id, [ScoredDoc(query_id, *_hit(path, number, i, hit)) for i, hit in enumerate(_hits(path, number, obj))]


def iter_search_responses(lines: Iterable[tuple[int, str]], path: PathLike) -> Iterator[tuple[int, ScoredDoc]]:
    """``(line number, ScoredDoc)`` for every hit of every response line, in file order."""
    seen: set[str] = set()
    for number, line in lines:
        query_id, docs = parse_search_response(path, number, line)
        if query_id in seen:
            raise FormatError(path, number, f"query {query_id!r} already had a response on an earlier line")
        seen.add(query_id)
        for doc in docs:
            yield number, doc

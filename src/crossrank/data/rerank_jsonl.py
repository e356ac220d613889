"""Tevatron-style rerank JSONL: one object per (query, passage) with keys
``query_id``, ``query``, ``text_id``, ``text`` and optional ``score``."""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator

from crossrank.data.atomic import atomic_write
from crossrank.data.errors import FormatError
from crossrank.data.fields import parse_json_object, require_str
from crossrank.data.records import RerankItem
from crossrank.data.textfiles import PathLike, iter_lines


def _score(path: PathLike, number: int, obj: dict) -> float | None:
    value = obj.get("score")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise FormatError(path, number, f"'score' must be a number, got {value!r}")
    return float(value)


def iter_rerank_jsonl(path: PathLike) -> Iterator[RerankItem]:
    for number, line in iter_lines(path):
        obj = parse_json_object(path, number, line)
        yield RerankItem(
            query_id=require_str(path, number, obj, "query_id"),
            query=require_str(path, number, obj, "query"),
            doc_id=require_str(path, number, obj, "text_id"),
            text=require_str(path, number, obj, "text"),
            score=_score(path, number, obj),
        )


def _to_json(item: RerankItem) -> str:
    obj = {"query_id": item.query_id, "query": item.query, "text_id": item.doc_id, "text": item.text}
    if item.score is not None:
        obj["score"] = float(item.score)
    return json.dumps(obj, ensure_ascii=False)


def write_rerank_jsonl(path: PathLike, items: Iterable[RerankItem]) -> int:
    """Write ``items`` atomically (``score`` omitted when None); returns the number written."""
    count = 0
    with atomic_write(path) as handle:
        for item in items:
            handle.write(_to_json(item) + "\n")
            count += 1
    return count

"""Query files: MS MARCO-style TSV (``qid<TAB>text``) or BEIR ``queries.jsonl`` (``_id``, ``text``)."""
from __future__ import annotations

from collections.abc import Iterator

from crossrank.data.fields import parse_json_object, require_str, split_id_text
from crossrank.data.records import Query
from crossrank.data.textfiles import PathLike, base_name, iter_lines


def is_jsonl(path: PathLike) -> bool:
    return base_name(path).endswith((".jsonl", ".json"))


def iter_queries(path: PathLike) -> Iterator[Query]:
    """Stream queries; ``*.jsonl[.gz]`` is read as BEIR JSONL, anything else as TSV."""
    if is_jsonl(path):
        for number, line in iter_lines(path):
            obj = parse_json_object(path, number, line)
            yield Query(require_str(path, number, obj, "_id"), require_str(path, number, obj, "text"))
    else:
        for number, line in iter_lines(path):
            qid, text = split_id_text(path, number, line, "qid")
            yield Query(qid, text)


def load_queries(path: PathLike) -> dict[str, str]:
    """``{query_id: text}`` (a repeated query id keeps its last text)."""
    return {query.query_id: query.text for query in iter_queries(path)}

"""Query files: MS MARCO-style TSV (``qid<TAB>text``) or BEIR ``queries.jsonl`` (``_id``, ``text``)."""
from __future__ import annotations

from collections.abc import Iterator

from crossrank.data.errors import FormatError
from crossrank.data.fields import parse_json_object, require_str, split_id_text
from crossrank.data.records import Query
from crossrank.data.textfiles import PathLike, base_name, iter_lines


def is_jsonl(path: PathLike) -> bool:
    return base_name(path).endswith((".jsonl", ".json"))


def numbered_queries(path: PathLike) -> Iterator[tuple[int, Query]]:
    """``(line number, Query)`` in file order; ``*.jsonl[.gz]`` is read as BEIR JSONL, anything else as TSV."""
    if is_jsonl(path):
        for number, line in iter_lines(path):
            obj = parse_json_object(path, number, line)
            yield number, Query(require_str(path, number, obj, "_id"), require_str(path, number, obj, "text"))
    else:
        for number, line in iter_lines(path):
            qid, text = split_id_text(path, number, line, "qid")
            yield number, Query(qid, text)


def iter_queries(path: PathLike) -> Iterator[Query]:
    """Stream queries; ``*.jsonl[.gz]`` is read as BEIR JSONL, anything else as TSV."""
    for _, query in numbered_queries(path):
        yield query


def load_queries(path: PathLike) -> dict[str, str]:
    """``{query_id: text}``. A query id given twice with the same text is one query; with two
    different texts it is an error naming both lines (which text is meant cannot be guessed)."""
    queries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for number, query in numbered_queries(path):
        seen = queries.get(query.query_id)
        if seen is not None and seen != query.text:
            raise FormatError(path, number, f"query id {query.query_id!r} is given again with another text "
                                            f"(first on line {first_line[query.query_id]}): {seen!r} vs {query.text!r}")
        queries[query.query_id] = query.text
        first_line.setdefault(query.query_id, number)
    return queries

"""MS MARCO training triples: ``query<TAB>positive passage<TAB>negative passage`` (no ids)."""
from __future__ import annotations

from collections.abc import Iterator

from crossrank.data.fields import split_tab_fields
from crossrank.data.records import Triple
from crossrank.data.textfiles import PathLike, iter_lines

_FIELDS = ("query", "positive", "negative")


def iter_triples(path: PathLike) -> Iterator[Triple]:
    for number, line in iter_lines(path):
        query, positive, negative = split_tab_fields(path, number, line, _FIELDS)
        yield Triple(query, positive, negative)

"""Grouping a stream of records by query id."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar


class HasQueryId(Protocol):
    @property
    def query_id(self) -> str: ...


T = TypeVar("T", bound=HasQueryId)


def group_by_query(items: Iterable[T]) -> Iterator[tuple[str, list[T]]]:
    """Yield ``(query_id, items)`` for each maximal run of consecutive items with the same ``query_id``.

    Streaming: only one query's items are held. A query id that reappears later (file not grouped)
    starts a new group; it is not merged with the earlier one.
    """
    current: str | None = None
    group: list[T] = []
    for item in items:
        if item.query_id != current and group:
            yield current, group
            group = []
        current = item.query_id
        group.append(item)
    if group:
        yield current, group

"""MS MARCO ``top1000.*.tsv`` candidate files: ``qid<TAB>pid<TAB>query<TAB>passage`` (no score)."""
from __future__ import annotations

from collections.abc import Iterator

from crossrank.data.errors import FormatError
from crossrank.data.fields import split_tab_fields
from crossrank.data.records import RerankItem
from crossrank.data.textfiles import PathLike, iter_lines

_FIELDS = ("qid", "pid", "query", "passage")


def iter_top1000(path: PathLike) -> Iterator[RerankItem]:
    """Stream candidates in file order; ``score`` is None (the format has none)."""
    for number, line in iter_lines(path):
        qid, pid, query, passage = split_tab_fields(path, number, line, _FIELDS)
        if not qid.strip() or not pid.strip():
            raise FormatError(path, number, "empty qid or pid")
        yield RerankItem(query_id=qid.strip(), query=query, doc_id=pid.strip(), text=passage)

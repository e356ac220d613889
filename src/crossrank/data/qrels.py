"""Relevance judgments.

Accepted layouts (detected on the first non-blank line, then required on every line):

* TREC, 4 whitespace-separated fields: ``qid iter docid relevance`` (``iter`` ignored, e.g. ``0``/``Q0``);
* 2 fields: ``qid docid`` -- every listed pair has relevance 1;
* BEIR ``qrels/*.tsv``, 3 tab-separated fields ``query-id corpus-id score`` with that header line.
"""
from __future__ import annotations

from collections.abc import Iterator

from crossrank.data.errors import FormatError
from crossrank.data.fields import parse_int
from crossrank.data.records import Qrel
from crossrank.data.textfiles import PathLike, iter_lines

_LAYOUTS = {
    4: "qid iter docid relevance",
    2: "qid docid",
    3: "query-id corpus-id score",
}


def _parse(path: PathLike, number: int, fields: list[str]) -> Qrel:
    if len(fields) == 4:
        qid, _, doc_id, rel = fields
    elif len(fields) == 3:
        qid, doc_id, rel = fields
    else:
        return Qrel(fields[0], fields[1], 1)
    return Qrel(qid, doc_id, parse_int(path, number, rel, "relevance"))


def numbered_qrels(path: PathLike) -> Iterator[tuple[int, Qrel]]:
    """``(line number, Qrel)`` in file order (ids as strings, relevance as int)."""
    width = None
    for number, line in iter_lines(path):
        fields = line.split()
        if width is None:
            width = len(fields)
            if width not in _LAYOUTS:
                raise FormatError(
                    path, number, f"expected 4 fields (qid iter docid relevance), 2 (qid docid) or 3 "
                    f"(BEIR query-id corpus-id score), got {width}"
                )
            if fields[0] == "query-id":  # BEIR header
                continue
        if len(fields) != width:
            raise FormatError(
                path, number, f"expected {width} whitespace-separated fields ({_LAYOUTS[width]}) as on the "
                f"first line, got {len(fields)}"
            )
        yield number, _parse(path, number, fields)


def iter_qrels(path: PathLike) -> Iterator[Qrel]:
    """Stream judgments (ids as strings, relevance as int) in file order."""
    for _, qrel in numbered_qrels(path):
        yield qrel


def load_qrels(path: PathLike) -> dict[str, dict[str, int]]:
    """``{qid: {docid: relevance}}``. A (qid, docid) pair judged twice with the same grade is one
    judgment; with two different grades it is an error naming both lines (trec_eval would keep
    the last one silently)."""
    qrels: dict[str, dict[str, int]] = {}
    first_line: dict[tuple[str, str], int] = {}
    for number, qrel in numbered_qrels(path):
        judged = qrels.setdefault(qrel.query_id, {})
        seen = judged.get(qrel.doc_id)
        key = (qrel.query_id, qrel.doc_id)
        if seen is not None and seen != qrel.relevance:
            raise FormatError(path, number, f"query {qrel.query_id!r}, passage {qrel.doc_id!r} is judged {qrel.relevance} here "
                                            f"but {seen} on line {first_line[key]}")
        judged[qrel.doc_id] = qrel.relevance
        first_line.setdefault(key, number)
    return qrels

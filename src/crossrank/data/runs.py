"""Run files (ranked results).

Formats:

* ``trec``: ``qid Q0 docid rank score tag``, whitespace-separated. As in trec_eval, the rank column
  is checked to be an integer but otherwise ignored: the order is given by the score.
* ``msmarco``: ``qid<TAB>pid<TAB>rank`` (no score). On reading, **score = -rank**, so sorting by
  score descending reproduces the file's rank order exactly (integers are exact in float32 up to
  2**24, unlike 1/rank which loses resolution); writing such a run back gives the same ranks.
* ``search-jsonl`` (read only): Elasticsearch / OpenSearch search responses, one JSON body per line
  with a ``query_id`` added (`crossrank.data.search_responses`).

Writing assigns ranks 1..n per query with `crossrank.data.ranking.rank_scores`: score descending,
ties (equal as float32) broken by doc id descending -- trec_eval's own order, so the ranks written
agree with the ranks trec_eval evaluates. Queries are written in the order given.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import IO

from crossrank.data.atomic import atomic_write
from crossrank.data.errors import FormatError
from crossrank.data.fields import parse_int, parse_score
from crossrank.data.ranking import rank_scores
from crossrank.data.records import ScoredDoc
from crossrank.data.search_responses import iter_search_responses
from crossrank.data.textfiles import PathLike, iter_lines

FORMATS = ("trec", "msmarco")  # written and read
SEARCH_JSONL = "search-jsonl"  # read only: Elasticsearch / OpenSearch responses (crossrank.data.search_responses)
_FIELD_COUNTS = {6: "trec", 3: "msmarco"}
_TREC_FIELDS = "(qid Q0 docid rank score tag)"
_MSMARCO_FIELDS = "(qid pid rank)"

RunDict = dict[str, dict[str, float]]
RunLike = Mapping[str, Mapping[str, float]] | Iterable[ScoredDoc]


def _detect(path: PathLike, number: int, fields: list[str]) -> str:
    try:
        return _FIELD_COUNTS[len(fields)]
    except KeyError:
        raise FormatError(
            path, number, f"cannot detect run format: expected 6 fields {_TREC_FIELDS} or 3 fields "
            f"{_MSMARCO_FIELDS}, got {len(fields)}"
        ) from None


def _parse_trec(path: PathLike, number: int, fields: list[str]) -> ScoredDoc:
    if len(fields) != 6:
        raise FormatError(path, number, f"expected 6 whitespace-separated fields {_TREC_FIELDS}, got {len(fields)}")
    qid, _, doc_id, rank, score, _ = fields
    parse_int(path, number, rank, "rank")
    return ScoredDoc(qid, doc_id, parse_score(path, number, score))


def _parse_msmarco(path: PathLike, number: int, fields: list[str]) -> ScoredDoc:
    if len(fields) != 3:
        raise FormatError(path, number, f"expected 3 fields {_MSMARCO_FIELDS}, got {len(fields)}")
    qid, doc_id, rank = fields
    value = parse_int(path, number, rank, "rank")
    if value < 1:
        raise FormatError(path, number, f"rank must be >= 1, got {value}")
    return ScoredDoc(qid, doc_id, float(-value))


def _check_format(format: str, allow_auto: bool, reading: bool = False) -> None:
    allowed = FORMATS + ((SEARCH_JSONL,) if reading else ()) + (("auto",) if allow_auto else ())
    if format not in allowed:
        raise ValueError(f"unknown run format {format!r}; expected one of {', '.join(allowed)}")


def _iter_numbered(path: PathLike, format: str) -> Iterator[tuple[int, ScoredDoc]]:
    _check_format(format, allow_auto=True, reading=True)
    lines = iter_lines(path)
    first = next(lines, None)
    if first is None:
        return
    lines = itertools.chain([first], lines)
    if format == SEARCH_JSONL or (format == "auto" and first[1].lstrip().startswith("{")):
        yield from iter_search_responses(lines, path)
        return
    fmt = _detect(path, first[0], first[1].split()) if format == "auto" else format
    parse = _parse_trec if fmt == "trec" else _parse_msmarco
    for number, line in lines:
        yield number, parse(path, number, line.split())


def iter_run(path: PathLike, format: str = "auto") -> Iterator[ScoredDoc]:
    """Stream a run file in file order. ``format``: ``"trec"``, ``"msmarco"``, ``"search-jsonl"`` or
    ``"auto"`` (by the first non-blank line: a JSON object -> search-jsonl, else by its field count:
    6 -> trec, 3 -> msmarco)."""
    for _, doc in _iter_numbered(path, format):
        yield doc


def load_run(path: PathLike, format: str = "auto") -> RunDict:
    """``{qid: {docid: score}}``; a (qid, docid) pair listed twice is a FormatError (trec_eval rejects it too)."""
    run: RunDict = {}
    for number, doc in _iter_numbered(path, format):
        scores = run.setdefault(doc.query_id, {})
        if doc.doc_id in scores:
            raise FormatError(path, number, f"duplicate document {doc.doc_id!r} for query {doc.query_id!r}")
        scores[doc.doc_id] = doc.score
    return run


def _check_token(value: str, what: str) -> None:
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"{what} must be non-empty without whitespace to be written in a run file, got {value!r}")


class RunWriter:
    """Atomic, streaming run writer: one query at a time.

    >>> with RunWriter("out.trec", format="trec", tag="minilm") as writer:
    ...     writer.write("q1", {"d1": 3.2, "d2": 1.5})

    The file appears only when the ``with`` block exits without error. Each query id may be
    written once; ranks follow `rank_scores` (score desc, doc id desc); ``depth`` keeps the top-k.
    """

    def __init__(self, path: PathLike, format: str = "trec", tag: str = "crossrank", depth: int | None = None) -> None:
        _check_format(format, allow_auto=False)
        _check_token(tag, "tag")
        if depth is not None and depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.path, self.format, self.tag, self.depth = path, format, tag, depth
        self._context = None
        self._handle: IO[str] | None = None
        self._seen: set[str] = set()

    def __enter__(self) -> RunWriter:
        self._context = atomic_write(self.path)
        self._handle = self._context.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool | None:
        self._handle = None
        return self._context.__exit__(exc_type, exc, tb)

    def write(self, query_id: str, scores: Mapping[str, float] | Iterable[ScoredDoc]) -> None:
        """Write one query's results (``{doc_id: score}`` or ScoredDocs of that query)."""
        if self._handle is None:
            raise RuntimeError("RunWriter.write() called outside its 'with' block")
        _check_token(query_id, "query id")
        if query_id in self._seen:
            raise ValueError(f"query {query_id!r} was already written to {self.path}")
        self._seen.add(query_id)
        self._handle.write(format_ranked(query_id, scores, self.format, self.tag, self.depth))


def format_ranked(query_id: str, scores: Mapping[str, float] | Iterable[ScoredDoc], format: str = "trec",
                  tag: str = "crossrank", depth: int | None = None) -> str:
    """One query's lines of a run file, ranked by `rank_scores` (for writers that manage their own file)."""
    _check_format(format, allow_auto=False)
    _check_token(query_id, "query id")
    ranked = rank_scores(_as_mapping(query_id, scores), depth)
    if format == "msmarco":
        return "".join(f"{query_id}\t{doc_id}\t{rank}\n" for rank, (doc_id, _) in enumerate(ranked, start=1))
    return "".join(f"{query_id} Q0 {doc_id} {rank} {score!r} {tag}\n" for rank, (doc_id, score) in enumerate(ranked, start=1))


def _as_mapping(query_id: str, scores: Mapping[str, float] | Iterable[ScoredDoc]) -> dict[str, float]:
    if isinstance(scores, Mapping):
        items = scores.items()
    else:
        items = []
        for doc in scores:
            if doc.query_id != query_id:
                raise ValueError(f"ScoredDoc for query {doc.query_id!r} passed while writing query {query_id!r}")
            items.append((doc.doc_id, doc.score))
    result: dict[str, float] = {}
    for doc_id, score in items:
        _check_token(doc_id, "doc id")
        score = float(score)
        if math.isnan(score):
            raise ValueError(f"NaN score for query {query_id!r}, document {doc_id!r}")
        result[doc_id] = score
    return result


def _group_all(run: RunLike) -> Mapping[str, Mapping[str, float]]:
    if isinstance(run, Mapping):
        return run
    grouped: dict[str, dict[str, float]] = {}
    for doc in run:
        grouped.setdefault(doc.query_id, {})[doc.doc_id] = doc.score
    return grouped


def write_run(path: PathLike, run: RunLike, format: str = "trec", tag: str = "crossrank",
              depth: int | None = None) -> None:
    """Write ``run`` (``{qid: {docid: score}}`` or ScoredDocs, in any order) atomically.
    Ranks: score desc, then doc id desc (trec_eval's order); see the module docstring."""
    with RunWriter(path, format=format, tag=tag, depth=depth) as writer:
        for query_id, scores in _group_all(run).items():
            writer.write(query_id, scores)


def convert_run(src: PathLike, dst: PathLike, to_format: str, tag: str = "crossrank",
                from_format: str = "auto") -> None:
    """Convert a run between ``trec`` and ``msmarco`` (ranks re-derived by `rank_scores`).

    The source is loaded whole (a run need not be grouped by query). From msmarco, scores become
    ``-rank``; to msmarco, the score is dropped.
    """
    _check_format(to_format, allow_auto=False)
    run = load_run(src, format=from_format)
    if not run:
        raise FormatError(src, None, "holds no ranked passage: nothing to convert")
    write_run(dst, run, format=to_format, tag=tag)

"""Training examples on disk: JSONL, one example per line.

`{"query_id": "...", "query": "...", "doc_ids": [...], "passages": [...], "labels": [...]}`
covers every shape: a pair has one passage, an n-tuple has the positive first with labels
[1, 0, ...], a labelled list has graded labels, a distillation example has teacher scores.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from crossrank.data import FormatError, atomic_write
from crossrank.data.fields import parse_json_object
from crossrank.data.textfiles import iter_lines
from crossrank.training.examples import TrainingExample


def write_examples(path, examples: Iterable[TrainingExample]) -> int:
    n = 0
    with atomic_write(path) as f:
        for e in examples:
            obj = {"query_id": e.query_id, "query": e.query, "doc_ids": list(e.doc_ids), "passages": list(e.passages), "labels": list(e.targets)}
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
            n += 1
    return n


def iter_examples(path) -> Iterator[TrainingExample]:
    for lineno, line in iter_lines(path):
        obj = parse_json_object(path, lineno, line)
        for key, kind in (("query", str), ("passages", list), ("labels", list)):
            if not isinstance(obj.get(key), kind):
                raise FormatError(path, lineno, f"field {key!r} must be a {kind.__name__}, got {type(obj.get(key)).__name__}")
        if not all(isinstance(p, str) for p in obj["passages"]):
            raise FormatError(path, lineno, "field 'passages' must hold strings")
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in obj["labels"]):
            raise FormatError(path, lineno, "field 'labels' must hold numbers")
        try:
            yield TrainingExample(obj["query"], obj["passages"], [float(x) for x in obj["labels"]],
                                  str(obj.get("query_id", "")), [str(d) for d in obj.get("doc_ids", [])])
        except ValueError as exc:
            raise FormatError(path, lineno, str(exc)) from exc

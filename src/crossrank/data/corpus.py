"""Passage collections: MS MARCO ``collection.tsv`` (``pid<TAB>text``) or BEIR ``corpus.jsonl``."""
from __future__ import annotations

from collections.abc import Iterator

from crossrank.data.fields import parse_json_object, require_str, split_id_text
from crossrank.data.queries import is_jsonl
from crossrank.data.records import Passage
from crossrank.data.textfiles import PathLike, iter_lines


def iter_corpus(path: PathLike) -> Iterator[Passage]:
    """Stream passages. ``*.jsonl[.gz]``: BEIR objects with ``_id``, ``text`` and optional ``title``;
    anything else: TSV ``pid<TAB>text`` (text = rest of the line, kept verbatim)."""
    if is_jsonl(path):
        for number, line in iter_lines(path):
            obj = parse_json_object(path, number, line)
            yield Passage(
                doc_id=require_str(path, number, obj, "_id"),
                text=require_str(path, number, obj, "text"),
                title=require_str(path, number, obj, "title", default=""),
            )
    else:
        for number, line in iter_lines(path):
            pid, text = split_id_text(path, number, line, "pid")
            yield Passage(pid, text)


def join_title(title: str, text: str) -> str:
    """BEIR convention used everywhere in crossrank: ``title + " " + text``; just the non-empty one
    when the other is empty (so an untitled passage is its text, unchanged)."""
    return f"{title} {text}" if title and text else title or text

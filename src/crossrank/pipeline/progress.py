"""A run file written query by query, resumable: `OUTPUT.partial` + `OUTPUT.progress`, renamed at the end.

Each finished query is appended to `OUTPUT.partial` and recorded in `OUTPUT.progress` (query id and
the partial file's size after it). A killed job started again skips the recorded queries and
truncates anything written after the last record; when every query is done the partial file is
renamed to OUTPUT. The single-process and the Ray engines both write through it.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from crossrank.data.candidates import Candidates
from crossrank.data.runs import format_ranked


class RunProgress:
    """The partial output and its progress record, for resuming."""

    def __init__(self, output: Path):
        self.partial = output.with_name(output.name + ".partial")
        self.record = output.with_name(output.name + ".progress")

    def load(self) -> set[str]:
        """The query ids already written (a fresh start when there is nothing to resume)."""
        if not (self.partial.exists() and self.record.exists()):
            self.partial.write_text("")
            self.record.write_text("")
            return set()
        done: set[str] = set()
        size = 0
        for line in self.record.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) == 2 and parts[1].isdigit():
                done.add(parts[0])
                size = int(parts[1])
        with self.partial.open("r+b") as f:
            f.truncate(size)  # drop a query that was half written when the job died
        return done

    def append(self, out, qid: str, text: str) -> None:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
        with self.record.open("a", encoding="utf-8") as rec:
            rec.write(f"{qid}\t{out.tell()}\n")

    def write_scored(self, out, chunk: Sequence[Candidates], scores, run_format: str, tag: str) -> Iterator[Candidates]:
        """Append each scored query to the partial output and record it, in order (yields each once written)."""
        for c, s in zip(chunk, scores):
            ranked = dict(zip(c.doc_ids, (float(x) for x in s)))
            self.append(out, c.query_id, format_ranked(c.query_id, ranked, run_format, tag))
            yield c

    def finish(self, output: Path) -> None:
        os.replace(self.partial, output)
        self.record.unlink(missing_ok=True)


def chunks(candidates: Iterable[Candidates], done: set[str], chunk_pairs: int) -> Iterator[list[Candidates]]:
    """The queries not yet done, cut into chunks of at least `chunk_pairs` pairs (the last one smaller)."""
    chunk: list[Candidates] = []
    size = 0
    for c in candidates:
        if c.query_id in done:
            continue
        chunk.append(c)
        size += len(c)
        if size >= chunk_pairs:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk

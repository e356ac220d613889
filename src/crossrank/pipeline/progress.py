"""A run file written query by query, resumable: `OUTPUT.partial` + `OUTPUT.progress`, renamed at the end.

Each finished query is appended to `OUTPUT.partial` and recorded in `OUTPUT.progress` (query id,
the partial file's size after it, a digest of the query's candidates). A killed job started again
skips the recorded queries and truncates anything written after the last record; when every query
is done the partial file is renamed to OUTPUT. The single-process and the Ray engines both write
through it.

A resume checks what it resumes: the record's first line holds the settings the run was started
with (model, output format, tag, scoring options), and each recorded query the digest of its
candidates (ids, texts, first-stage scores: another run, depth, corpus or queries file changes it).
A mismatch is an error naming what differs, before anything is written; `overwrite` starts again.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from crossrank.data.atomic import atomic_write
from crossrank.data.candidates import Candidates
from crossrank.data.textfiles import is_gzip
from crossrank.data.runs import format_ranked


SETTINGS = "#settings\t"


def candidates_digest(c: Candidates) -> str:
    """What decides a query's reranked lines besides the model: its id, candidates, texts and first-stage scores."""
    h = hashlib.blake2b(digest_size=12)
    h.update(json.dumps([c.query_id, c.query, c.doc_ids, c.texts, c.first_stage], ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()


class ResumeMismatchError(ValueError):
    """An unfinished run at the output was started from other settings or other candidates."""


class RunProgress:
    """The partial output and its progress record, for resuming."""

    def __init__(self, output: Path, settings: dict | None = None, overwrite: bool = False):
        self.output = output
        self.partial = output.with_name(output.name + ".partial")
        self.record = output.with_name(output.name + ".progress")
        self.settings = {k: v for k, v in (settings or {}).items() if v is not None}
        self.overwrite = overwrite
        self.done: dict[str, str | None] = {}  # query id -> digest of its candidates (None: an older record without one)

    def load(self) -> set[str]:
        """The query ids already written (a fresh start when there is nothing to resume, or with `overwrite`)."""
        if self.overwrite or not (self.partial.exists() and self.record.exists()):
            self.partial.write_text("")
            self.record.write_text(SETTINGS + json.dumps(self.settings, sort_keys=True) + "\n", encoding="utf-8")
            return set()
        size = 0
        for line in self.record.read_text(encoding="utf-8").splitlines():
            if line.startswith(SETTINGS):
                self._check_settings(json.loads(line[len(SETTINGS):]))
                continue
            parts = line.split("\t")
            if len(parts) in (2, 3) and parts[1].isdigit():
                self.done[parts[0]] = parts[2] if len(parts) == 3 else None
                size = int(parts[1])
        with self.partial.open("r+b") as f:
            f.truncate(size)  # drop a query that was half written when the job died
        return set(self.done)

    def _check_settings(self, before: dict) -> None:
        changed = sorted(k for k in set(before) | set(self.settings)
                         if k in before and k in self.settings and before[k] != self.settings[k])
        if changed:
            raise ResumeMismatchError(
                f"{self.output}: the unfinished run there ({self.partial.name}) was started with other settings: "
                + "; ".join(f"{k} {before[k]!r} then, {self.settings[k]!r} now" for k in changed)
                + ". Start again with --overwrite (overwrite=True), or use another --output")

    def check(self, c: Candidates) -> None:
        """A query already written must have had exactly these candidates."""
        recorded = self.done.get(c.query_id)
        if recorded is not None and recorded != candidates_digest(c):
            raise ResumeMismatchError(
                f"{self.output}: query {c.query_id!r} was reranked before from other candidates (another run, depth, "
                "corpus or queries file). Start again with --overwrite (overwrite=True), or use another --output")

    def write_scored(self, out, chunk: Sequence[Candidates], scores, run_format: str, tag: str) -> Iterator[Candidates]:
        """Append a scored chunk to the partial output, then record its queries in one write (yields each
        once recorded). A job killed anywhere in here resumes at this chunk's start, so the chunks after
        a resume are the ones an uninterrupted run scores: the same batches, the same bytes."""
        start = out.tell()
        texts = [format_ranked(c.query_id, dict(zip(c.doc_ids, (float(x) for x in s))), run_format, tag) for c, s in zip(chunk, scores)]
        out.write("".join(texts))
        out.flush()
        os.fsync(out.fileno())
        lines, size = [], start
        for c, text in zip(chunk, texts):
            size += len(text.encode("utf-8"))
            lines.append(f"{c.query_id}\t{size}\t{candidates_digest(c)}\n")
        with self.record.open("a", encoding="utf-8") as rec:
            rec.write("".join(lines))
        yield from chunk

    def finish(self, output: Path) -> None:
        """The complete run at `output` (gzip-compressed for a `.gz` name, as every writer does)."""
        if is_gzip(output):
            with atomic_write(output, "wb") as out, self.partial.open("rb") as src:
                shutil.copyfileobj(src, out)
            self.partial.unlink()
        else:
            os.replace(self.partial, output)
        self.record.unlink(missing_ok=True)


def chunk_targets(chunk_pairs: int, first_pairs: int | None = None) -> Iterator[int]:
    """Pairs per chunk, chunk after chunk: `first_pairs`, doubling up to `chunk_pairs` (all `chunk_pairs` without a first)."""
    target = chunk_pairs if first_pairs is None else min(first_pairs, chunk_pairs)
    while True:
        yield target
        target = min(target * 2, chunk_pairs)


def chunks(candidates: Iterable[Candidates], progress: RunProgress, chunk_pairs: int,
           first_pairs: int | None = None) -> Iterator[list[Candidates]]:
    """The queries not yet done, in chunks of at least their target of pairs (the last one smaller); a query
    done before is checked to have the same candidates.

    Chunks start small (`first_pairs`, doubling up to `chunk_pairs`) so that a short job keeps its first
    queries within a second or two, and they are cut by position over every query, done or not: a resumed
    job scores exactly the chunks an uninterrupted one scores (chunks are recorded whole), so the same bytes.
    """
    targets = chunk_targets(chunk_pairs, first_pairs)
    target = next(targets)
    chunk: list[Candidates] = []
    size = 0
    for c in candidates:
        if c.query_id in progress.done:
            progress.check(c)
        else:
            chunk.append(c)
        size += len(c)
        if size >= target:
            if chunk:
                yield chunk
            chunk, size, target = [], 0, next(targets)
    if chunk:
        yield chunk
